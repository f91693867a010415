/**
 * RFC 2131 message codec. Decoding never throws: malformed input comes back as a reason the server counts
 * and logs. Encoding pads to the 300 bytes old PXE ROMs insist on and NUL-terminates `sname`/`file`.
 */
import { bufToIp, type KnownOption, OPTION_CODECS, Opt, OptionError, type OptionValue, writeIp } from "./options.ts";

export const MAGIC_COOKIE = 0x63825363;
const FIXED = 236;
const HEADER = FIXED + 4;
/** Some PXE ROMs drop BOOTP replies shorter than the BOOTP minimum. */
export const MIN_REPLY = 300;
/** RFC 2131 minimum every client accepts; used when the client announces no option 57. */
export const DEFAULT_MAX_MESSAGE = 576;
const SNAME_LEN = 64;
const FILE_LEN = 128;

/** Options as raw bytes by code, in the order they were added; typed access through the option table. */
export class DhcpOptions {
  constructor(readonly raw: Map<number, Buffer> = new Map()) {}

  has(code: number): boolean {
    return this.raw.has(code);
  }

  /** Decoded value, undefined if absent; throws OptionError if present but malformed. */
  get<C extends KnownOption>(code: C): OptionValue<C> | undefined {
    const b = this.raw.get(code);
    if (b === undefined) return undefined;
    try {
      return (OPTION_CODECS[code].decode as (b: Buffer) => OptionValue<C>)(b);
    } catch (err) {
      throw new OptionError(`option ${code}: ${(err as Error).message}`);
    }
  }

  set<C extends KnownOption>(code: C, value: OptionValue<C>): this {
    this.raw.set(code, (OPTION_CODECS[code].encode as (v: OptionValue<C>) => Buffer)(value));
    return this;
  }

  setRaw(code: number, value: Buffer): this {
    this.raw.set(code, value);
    return this;
  }
}

export interface DhcpPacket {
  op: 1 | 2;
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  flags: number;
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  /** 16 bytes as on the wire; the MAC is the first `hlen`. */
  chaddr: Buffer;
  sname: string;
  file: string;
  options: DhcpOptions;
}

export const BROADCAST_FLAG = 0x8000;

export type DecodeResult = { ok: true; packet: DhcpPacket } | { ok: false; reason: string };

/**
 * Largest datagram decoded. Clients send one Ethernet frame's worth at most (ISC dhcpd and Kea read no more
 * than that); a bigger one is refused before any option is looked at, so no datagram costs more than a few
 * microseconds however it is built.
 */
export const MAX_PACKET_BYTES = 4096;

/**
 * Most option instances (code, length, value) one packet may carry over all its areas: a real client sends a
 * few dozen, a full-size datagram of 3-byte options holds over 1,300.
 */
export const MAX_OPTION_INSTANCES = 512;

/** What one packet's option areas decode into: first pieces by code, plus the rest of repeated codes. */
interface OptionWalk {
  raw: Map<number, Buffer>;
  /** Later pieces of codes seen more than once, joined once at the end (RFC 3396): linear in the datagram. */
  more: Map<number, Buffer[]> | undefined;
  instances: number;
}

/** Walks one option area into `w`. */
function readOptions(b: Buffer, w: OptionWalk, where: string): string | undefined {
  let i = 0;
  while (i < b.length) {
    const code = b[i]!;
    if (code === Opt.End) return undefined;
    if (code === Opt.Pad) {
      i++;
      continue;
    }
    if (++w.instances > MAX_OPTION_INSTANCES) return `more than ${MAX_OPTION_INSTANCES} options`;
    if (i + 1 >= b.length) return `${where}: option ${code} has no length byte`;
    const len = b[i + 1]!;
    if (i + 2 + len > b.length) return `${where}: option ${code} length ${len} runs past the end`;
    // Views into the datagram, not copies: node hands every datagram its own buffer.
    const value = b.subarray(i + 2, i + 2 + len);
    if (!w.raw.has(code)) w.raw.set(code, value);
    else {
      w.more ??= new Map();
      const pieces = w.more.get(code);
      if (pieces) pieces.push(value);
      else w.more.set(code, [value]);
    }
    i += 2 + len;
  }
  return undefined;
}

/** Joins the pieces of repeated codes walked so far into `w.raw`. */
function joinRepeats(w: OptionWalk): void {
  if (!w.more) return;
  for (const [code, pieces] of w.more) w.raw.set(code, Buffer.concat([w.raw.get(code)!, ...pieces]));
  w.more = undefined;
}

function cString(b: Buffer): string {
  const nul = b.indexOf(0);
  return b.toString("latin1", 0, nul < 0 ? b.length : nul);
}

export function decodePacket(b: Buffer): DecodeResult {
  if (b.length > MAX_PACKET_BYTES) return { ok: false, reason: `${b.length} bytes, more than ${MAX_PACKET_BYTES}` };
  if (b.length < HEADER) return { ok: false, reason: `truncated: ${b.length} bytes, need at least ${HEADER}` };
  const op = b[0]!;
  if (op !== 1 && op !== 2) return { ok: false, reason: `bad op ${op}` };
  const hlen = b[2]!;
  if (hlen > 16) return { ok: false, reason: `hlen ${hlen} exceeds 16` };
  const hops = b[3]!;
  // RFC 1542: relays discard beyond 16 hops; a larger count is garbage or a loop.
  if (hops > 16) return { ok: false, reason: `hops ${hops} exceeds 16` };
  if (b.readUInt32BE(FIXED) !== MAGIC_COOKIE) return { ok: false, reason: "missing magic cookie" };
  const w: OptionWalk = { raw: new Map(), more: undefined, instances: 0 };
  let err = readOptions(b.subarray(HEADER), w, "options");
  if (err) return { ok: false, reason: err };
  joinRepeats(w);
  const raw = w.raw;
  const sname = b.subarray(44, 44 + SNAME_LEN);
  const file = b.subarray(108, 108 + FILE_LEN);
  let overload = 0;
  const ov = raw.get(Opt.Overload);
  if (ov) {
    if (ov.length !== 1 || ov[0]! < 1 || ov[0]! > 3)
      return { ok: false, reason: `option 52: bad overload ${ov.toString("hex")}` };
    overload = ov[0]!;
    raw.delete(Opt.Overload);
    // RFC 2131 4.1: the file field is read before sname.
    if (overload & 1 && (err = readOptions(file, w, "file field"))) return { ok: false, reason: err };
    if (overload & 2 && (err = readOptions(sname, w, "sname field"))) return { ok: false, reason: err };
    joinRepeats(w);
  }
  return {
    ok: true,
    packet: {
      op,
      htype: b[1]!,
      hlen,
      hops,
      xid: b.readUInt32BE(4),
      secs: b.readUInt16BE(8),
      flags: b.readUInt16BE(10),
      ciaddr: bufToIp(b, 12),
      yiaddr: bufToIp(b, 16),
      siaddr: bufToIp(b, 20),
      giaddr: bufToIp(b, 24),
      // A view like the options: nothing writes to a decoded packet's chaddr.
      chaddr: b.subarray(28, 44),
      sname: overload & 2 ? "" : cString(sname),
      file: overload & 1 ? "" : cString(file),
      options: new DhcpOptions(raw),
    },
  };
}

const skipOnEncode = (code: number) => code === Opt.Pad || code === Opt.End || code === Opt.Overload;

/** Bytes `value` takes on the wire: RFC 3396 splits values over 255 bytes into consecutive instances. */
const wireLength = (value: Buffer) => (value.length === 0 ? 2 : value.length + 2 * Math.ceil(value.length / 255));

function writeOption(out: Buffer, at: number, code: number, value: Buffer): number {
  for (let i = 0; i === 0 || i < value.length; i += 255) {
    const len = Math.min(255, value.length - i);
    out[at++] = code;
    out[at++] = len;
    value.copy(out, at, i, i + len);
    at += len;
  }
  return at;
}

function writeHeader(out: Buffer, p: DhcpPacket): void {
  out[0] = p.op;
  out[1] = p.htype;
  out[2] = p.hlen;
  out[3] = p.hops;
  out.writeUInt32BE(p.xid >>> 0, 4);
  out.writeUInt16BE(p.secs, 8);
  out.writeUInt16BE(p.flags, 10);
  writeIp(p.ciaddr, out, 12);
  writeIp(p.yiaddr, out, 16);
  writeIp(p.siaddr, out, 20);
  writeIp(p.giaddr, out, 24);
  p.chaddr.copy(out, 28, 0, 16);
  out.writeUInt32BE(MAGIC_COOKIE, FIXED);
}

/**
 * Encodes a packet. Options that do not fit in `maxSize` spill into the `file` then `sname` fields
 * (option 52) when those fields are unused; a `file`/`sname` too long for its field (HTTP boot URLs)
 * moves into option 67/66 so it is never truncated.
 */
export function encodePacket(p: DhcpPacket, maxSize = DEFAULT_MAX_MESSAGE): Buffer {
  let raw = p.options.raw;
  let file = p.file;
  let sname = p.sname;
  if (Buffer.byteLength(file, "latin1") >= FILE_LEN || Buffer.byteLength(sname, "latin1") >= SNAME_LEN) {
    raw = new Map(raw);
    if (Buffer.byteLength(file, "latin1") >= FILE_LEN) raw.set(Opt.BootFile, Buffer.from(file, "latin1")), (file = "");
    if (Buffer.byteLength(sname, "latin1") >= SNAME_LEN)
      raw.set(Opt.TftpServer, Buffer.from(sname, "latin1")), (sname = "");
  }
  let total = 0;
  for (const [code, value] of raw) if (!skipOnEncode(code)) total += wireLength(value);
  const room = Math.max(maxSize, DEFAULT_MAX_MESSAGE) - HEADER - 1;
  let out: Buffer;
  if (total <= room) {
    // The common case, on every reply: straight into one buffer. allocUnsafe takes a slice of Node's shared
    // pool instead of a fresh zeroed allocation; the fill makes it what alloc would have given.
    out = Buffer.allocUnsafe(Math.max(MIN_REPLY, HEADER + total + 1)).fill(0);
    let at = HEADER;
    // Message type first: some clients look only at the first option.
    const mt = raw.get(Opt.MessageType);
    if (mt) at = writeOption(out, at, Opt.MessageType, mt);
    for (const [code, value] of raw)
      if (code !== Opt.MessageType && !skipOnEncode(code)) at = writeOption(out, at, code, value);
    out[at] = Opt.End;
  } else {
    const entries: [number, Buffer][] = [];
    const mt = raw.get(Opt.MessageType);
    if (mt) entries.push([Opt.MessageType, mt]);
    for (const [code, value] of raw) if (code !== Opt.MessageType && !skipOnEncode(code)) entries.push([code, value]);
    // Overload: fill the options field, then file, then sname, each ended by END.
    const areas = [
      { start: HEADER + 3, end: HEADER + 3 + room - 3, at: HEADER + 3, bit: 0 },
      ...(file ? [] : [{ start: 108, end: 108 + FILE_LEN - 1, at: 108, bit: 1 }]),
      ...(sname ? [] : [{ start: 44, end: 44 + SNAME_LEN - 1, at: 44, bit: 2 }]),
    ];
    out = Buffer.alloc(Math.max(MIN_REPLY, maxSize));
    for (const [code, value] of entries) {
      const area = areas.find((a) => a.at + wireLength(value) <= a.end);
      if (!area) throw new OptionError(`options do not fit in ${maxSize} bytes`);
      area.at = writeOption(out, area.at, code, value);
    }
    let overload = 0;
    for (const a of areas) {
      out[a.at] = Opt.End;
      if (a.bit && a.at > a.start) overload |= a.bit;
    }
    out[HEADER] = Opt.Overload;
    out[HEADER + 1] = 1;
    out[HEADER + 2] = overload;
    out = out.subarray(0, Math.max(MIN_REPLY, areas[0]!.at + 1));
  }
  writeHeader(out, p);
  // Fields are zero-filled, so writing at most len-1 bytes leaves the terminating NUL in place.
  if (file) out.write(file, 108, FILE_LEN - 1, "latin1");
  if (sname) out.write(sname, 44, SNAME_LEN - 1, "latin1");
  return out;
}

/** A reply skeleton for `req`: same xid, chaddr, flags, giaddr; the caller fills addresses and options. */
export function replyTo(req: DhcpPacket): DhcpPacket {
  return {
    op: 2,
    htype: req.htype,
    hlen: req.hlen,
    hops: 0,
    xid: req.xid,
    secs: 0,
    flags: req.flags,
    ciaddr: "0.0.0.0",
    yiaddr: "0.0.0.0",
    siaddr: "0.0.0.0",
    giaddr: req.giaddr,
    chaddr: req.chaddr,
    sname: "",
    file: "",
    options: new DhcpOptions(),
  };
}
