/** RFC 1350 / 2347 packet codec. Pure: bytes in, plain objects out, and back. */

export const Opcode = { RRQ: 1, WRQ: 2, DATA: 3, ACK: 4, ERROR: 5, OACK: 6 } as const;

export const ErrorCode = {
  NOT_DEFINED: 0,
  FILE_NOT_FOUND: 1,
  ACCESS_VIOLATION: 2,
  DISK_FULL: 3,
  ILLEGAL_OPERATION: 4,
  UNKNOWN_TID: 5,
  FILE_EXISTS: 6,
  NO_SUCH_USER: 7,
  /** RFC 2347: the client or server refuses the negotiated options. */
  OPTION_REFUSED: 8,
} as const;

export type Request = {
  op: typeof Opcode.RRQ | typeof Opcode.WRQ;
  filename: string;
  /** Lower-cased as sent; the RFC makes mode names case-insensitive. */
  mode: string;
  /** Option names lower-cased (RFC 2347: case-insensitive); values as sent. First occurrence wins. */
  options: Map<string, string>;
};
export type Data = { op: typeof Opcode.DATA; block: number; payload: Buffer };
export type Ack = { op: typeof Opcode.ACK; block: number };
export type ErrorPacket = { op: typeof Opcode.ERROR; code: number; message: string };
export type Oack = { op: typeof Opcode.OACK; options: Map<string, string> };
export type Packet = Request | Data | Ack | ErrorPacket | Oack;

export class MalformedPacket extends Error {
  override name = "MalformedPacket";
}

/** Splits a run of NUL-terminated strings; every string must be terminated. */
function cstrings(buf: Buffer, start: number): string[] {
  const out: string[] = [];
  let at = start;
  while (at < buf.length) {
    const end = buf.indexOf(0, at);
    if (end < 0) throw new MalformedPacket("string without NUL terminator");
    // latin1 maps every byte to one character, so names round-trip byte for byte.
    out.push(buf.toString("latin1", at, end));
    at = end + 1;
  }
  return out;
}

function optionMap(pairs: string[]): Map<string, string> {
  if (pairs.length % 2 !== 0) throw new MalformedPacket("option name without value");
  const options = new Map<string, string>();
  for (let i = 0; i < pairs.length; i += 2) {
    const name = pairs[i]!.toLowerCase();
    if (!options.has(name)) options.set(name, pairs[i + 1]!);
  }
  return options;
}

/** Parses one datagram; throws MalformedPacket for anything that is not a well-formed TFTP packet. */
export function decode(buf: Buffer): Packet {
  if (buf.length < 2) throw new MalformedPacket("shorter than an opcode");
  const op = buf.readUInt16BE(0);
  switch (op) {
    case Opcode.RRQ:
    case Opcode.WRQ: {
      const parts = cstrings(buf, 2);
      if (parts.length < 2) throw new MalformedPacket("request without filename and mode");
      const [filename, mode, ...rest] = parts as [string, string, ...string[]];
      if (filename === "") throw new MalformedPacket("empty filename");
      return { op, filename, mode: mode.toLowerCase(), options: optionMap(rest) };
    }
    case Opcode.DATA:
      if (buf.length < 4) throw new MalformedPacket("truncated DATA");
      return { op, block: buf.readUInt16BE(2), payload: buf.subarray(4) };
    case Opcode.ACK:
      // Some clients pad ACKs; the block number is all that matters.
      if (buf.length < 4) throw new MalformedPacket("truncated ACK");
      return { op, block: buf.readUInt16BE(2) };
    case Opcode.ERROR: {
      if (buf.length < 4) throw new MalformedPacket("truncated ERROR");
      // Clients in the field omit the message terminator; tolerate it rather than lose the error.
      const end = buf.indexOf(0, 4);
      return { op, code: buf.readUInt16BE(2), message: buf.toString("latin1", 4, end < 0 ? buf.length : end) };
    }
    case Opcode.OACK:
      return { op, options: optionMap(cstrings(buf, 2)) };
    default:
      throw new MalformedPacket(`unknown opcode ${op}`);
  }
}

function strings(op: number, parts: string[]): Buffer {
  const body = Buffer.from(parts.map((p) => `${p}\0`).join(""), "latin1");
  const out = Buffer.allocUnsafe(2 + body.length);
  out.writeUInt16BE(op, 0);
  body.copy(out, 2);
  return out;
}

let headers: Buffer | undefined;

/**
 * The 4-byte DATA header for a block (taken modulo 65536), as a view into one table of all 65536
 * headers built on first use. A transfer sends `[dataHeader(n), payload]` as one datagram (the kernel
 * gathers both), so no DATA packet is ever allocated or its payload copied.
 */
export function dataHeader(block: number): Buffer {
  if (!headers) {
    headers = Buffer.allocUnsafe(4 * 65536);
    for (let n = 0; n < 65536; n++) {
      headers.writeUInt16BE(Opcode.DATA, 4 * n);
      headers.writeUInt16BE(n, 4 * n + 2);
    }
  }
  const at = 4 * (block & 0xffff);
  return headers.subarray(at, at + 4);
}

/** Encodes a DATA packet; `block` is taken modulo 65536 (RFC 1350 numbers wrap to 0). */
export function encodeData(block: number, payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(4 + payload.length);
  out.writeUInt16BE(Opcode.DATA, 0);
  out.writeUInt16BE(block & 0xffff, 2);
  payload.copy(out, 4);
  return out;
}

export function encodeAck(block: number): Buffer {
  const out = Buffer.allocUnsafe(4);
  out.writeUInt16BE(Opcode.ACK, 0);
  out.writeUInt16BE(block & 0xffff, 2);
  return out;
}

export function encodeError(code: number, message: string): Buffer {
  const text = Buffer.from(message, "latin1");
  const out = Buffer.alloc(5 + text.length);
  out.writeUInt16BE(Opcode.ERROR, 0);
  out.writeUInt16BE(code, 2);
  text.copy(out, 4);
  return out;
}

export function encodeOack(options: ReadonlyMap<string, string>): Buffer {
  return strings(Opcode.OACK, [...options].flat());
}

export function encodeRequest(req: Omit<Request, "options"> & { options?: ReadonlyMap<string, string> }): Buffer {
  return strings(req.op, [req.filename, req.mode, ...[...(req.options ?? [])].flat()]);
}

/** Any packet back to bytes (round trip of `decode`). */
export function encode(p: Packet): Buffer {
  switch (p.op) {
    case Opcode.RRQ:
    case Opcode.WRQ:
      return encodeRequest(p);
    case Opcode.DATA:
      return encodeData(p.block, p.payload);
    case Opcode.ACK:
      return encodeAck(p.block);
    case Opcode.ERROR:
      return encodeError(p.code, p.message);
    case Opcode.OACK:
      return encodeOack(p.options);
  }
}
