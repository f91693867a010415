/**
 * DHCP option table (RFC 2132 and the PXE / iPXE / relay extensions Kindling reads or writes) and the
 * typed codecs behind it. Packets keep options as raw bytes keyed by code; these codecs turn them into
 * values and back, so what is not understood is still echoed byte for byte (option 82).
 */

export const Opt = {
  Pad: 0,
  SubnetMask: 1,
  Router: 3,
  DnsServers: 6,
  Hostname: 12,
  DomainName: 15,
  BroadcastAddress: 28,
  VendorSpecific: 43,
  RequestedIp: 50,
  LeaseTime: 51,
  Overload: 52,
  MessageType: 53,
  ServerId: 54,
  ParameterList: 55,
  Message: 56,
  MaxMessageSize: 57,
  RenewalTime: 58,
  RebindingTime: 59,
  VendorClass: 60,
  ClientId: 61,
  TftpServer: 66,
  BootFile: 67,
  UserClass: 77,
  RelayAgent: 82,
  ClientArch: 93,
  ClientNdi: 94,
  ClientGuid: 97,
  Ipxe: 175,
  End: 255,
} as const;

export const MessageType = {
  DISCOVER: 1,
  OFFER: 2,
  REQUEST: 3,
  DECLINE: 4,
  ACK: 5,
  NAK: 6,
  RELEASE: 7,
  INFORM: 8,
} as const;
export type MessageTypeName = keyof typeof MessageType;
export const messageTypeName = (t: number): MessageTypeName | undefined =>
  (Object.keys(MessageType) as MessageTypeName[]).find((k) => MessageType[k] === t);

/** PXE sub-options of option 43 (PXE spec 2.1, table 2-1). */
export const PxeSub = { DiscoveryControl: 6, BootServers: 8, BootMenu: 9, MenuPrompt: 10, BootItem: 71 } as const;
/** iPXE sub-options of option 175 that Kindling writes; 176 `no-pxedhcp` skips the 2 s proxy wait. */
export const IpxeSub = { NoPxeDhcp: 176 } as const;

export class OptionError extends Error {
  override name = "OptionError";
}

export interface Codec<T> {
  decode(b: Buffer): T;
  encode(v: T): Buffer;
}

function need(b: Buffer, ok: boolean, what: string): void {
  if (!ok) throw new OptionError(`${what}: bad length ${b.length}`);
}

/**
 * Writes a dotted-quad IPv4 address into `out` at `at`; a character loop because this runs for every address
 * field of every reply.
 */
export function writeIp(ip: string, out: Buffer, at: number): void {
  let part = 0;
  let octet = 0;
  let digits = 0;
  for (let i = 0; i <= ip.length; i++) {
    const c = i < ip.length ? ip.charCodeAt(i) : 46;
    if (c === 46) {
      if (digits === 0 || part > 3) throw new OptionError(`not an IPv4 address: ${ip}`);
      out[at + part++] = octet;
      octet = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57 && digits < 3) {
      octet = octet * 10 + (c - 48);
      digits++;
      if (octet > 255) throw new OptionError(`not an IPv4 address: ${ip}`);
    } else throw new OptionError(`not an IPv4 address: ${ip}`);
  }
  if (part !== 4) throw new OptionError(`not an IPv4 address: ${ip}`);
}

export function ipToBuf(ip: string): Buffer {
  const b = Buffer.allocUnsafe(4);
  writeIp(ip, b, 0);
  return b;
}
export const bufToIp = (b: Buffer, at = 0): string => `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;

export const ipCodec: Codec<string> = {
  decode: (b) => (need(b, b.length === 4, "ip"), bufToIp(b)),
  encode: ipToBuf,
};
export const ipListCodec: Codec<string[]> = {
  decode: (b) => {
    need(b, b.length > 0 && b.length % 4 === 0, "ip list");
    const out: string[] = [];
    for (let i = 0; i < b.length; i += 4) out.push(bufToIp(b, i));
    return out;
  },
  encode: (v) => Buffer.concat(v.map(ipToBuf)),
};
export const u8Codec: Codec<number> = {
  decode: (b) => (need(b, b.length === 1, "u8"), b[0]!),
  encode: (v) => Buffer.from([v]),
};
export const u16Codec: Codec<number> = {
  decode: (b) => (need(b, b.length === 2, "u16"), b.readUInt16BE(0)),
  encode: (v) => {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(v);
    return b;
  },
};
export const u32Codec: Codec<number> = {
  decode: (b) => (need(b, b.length === 4, "u32"), b.readUInt32BE(0)),
  encode: (v) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v);
    return b;
  },
};
export const stringCodec: Codec<string> = {
  // Some clients NUL-terminate strings inside options; the NUL is not part of the value. A loop, not a
  // regex: /\0+$/ backtracks quadratically over a long run of NULs followed by anything else.
  decode: (b) => {
    let end = b.length;
    while (end > 0 && b[end - 1] === 0) end--;
    return b.toString("latin1", 0, end);
  },
  encode: (v) => Buffer.from(v, "latin1"),
};
export const bytesCodec: Codec<Buffer> = { decode: (b) => Buffer.from(b), encode: (v) => Buffer.from(v) };
export const u8ListCodec: Codec<number[]> = { decode: (b) => [...b], encode: (v) => Buffer.from(v) };
export const u16ListCodec: Codec<number[]> = {
  decode: (b) => {
    need(b, b.length > 0 && b.length % 2 === 0, "u16 list");
    const out: number[] = [];
    for (let i = 0; i < b.length; i += 2) out.push(b.readUInt16BE(i));
    return out;
  },
  encode: (v) => Buffer.concat(v.map(u16Codec.encode)),
};

/** Encapsulated options (43, 175, 82): code/length/value triples, ended by 255 or the end of the data. */
export type SubOptions = Map<number, Buffer>;
export const subOptionsCodec: Codec<SubOptions> = {
  decode: (b) => {
    const out: SubOptions = new Map();
    // Later pieces of repeated codes, joined once at the end: linear however often a code repeats.
    let more: Map<number, Buffer[]> | undefined;
    let i = 0;
    while (i < b.length) {
      const code = b[i]!;
      if (code === 255) break;
      if (code === 0) {
        i++;
        continue;
      }
      if (i + 1 >= b.length) throw new OptionError(`sub-option ${code}: no length`);
      const len = b[i + 1]!;
      if (i + 2 + len > b.length) throw new OptionError(`sub-option ${code}: length ${len} past the end`);
      const value = b.subarray(i + 2, i + 2 + len);
      // Copies: a decoded value must not change if the datagram's buffer is reused.
      if (!out.has(code)) out.set(code, Buffer.from(value));
      else {
        more ??= new Map();
        const pieces = more.get(code);
        if (pieces) pieces.push(value);
        else more.set(code, [value]);
      }
      i += 2 + len;
    }
    for (const [code, pieces] of more ?? []) out.set(code, Buffer.concat([out.get(code)!, ...pieces]));
    return out;
  },
  encode: (v) => {
    const parts: Buffer[] = [];
    for (const [code, value] of v) {
      if (value.length > 255) throw new OptionError(`sub-option ${code}: ${value.length} bytes is too long`);
      parts.push(Buffer.from([code, value.length]), value);
    }
    parts.push(Buffer.from([255]));
    return Buffer.concat(parts);
  },
};

/**
 * Option 77. RFC 3004 frames each class as length + bytes; iPXE sends its class raw (`iPXE`), so bytes
 * that do not parse as a well-formed RFC 3004 list are one raw class.
 */
export interface UserClass {
  classes: string[];
  rfc3004: boolean;
}
export const userClassCodec: Codec<UserClass> = {
  decode: (b) => {
    const classes: string[] = [];
    let i = 0;
    while (i < b.length) {
      const len = b[i]!;
      if (len === 0 || i + 1 + len > b.length) return { classes: [b.toString("latin1")], rfc3004: false };
      classes.push(b.toString("latin1", i + 1, i + 1 + len));
      i += 1 + len;
    }
    return classes.length ? { classes, rfc3004: true } : { classes: [""], rfc3004: false };
  },
  encode: (v) =>
    v.rfc3004
      ? Buffer.concat(v.classes.map((c) => Buffer.concat([Buffer.from([c.length]), Buffer.from(c, "latin1")])))
      : Buffer.from(v.classes.join(""), "latin1"),
};

/** Option 94: interface type (1 = UNDI) and its major/minor version. */
export interface ClientNdi {
  type: number;
  major: number;
  minor: number;
}
export const ndiCodec: Codec<ClientNdi> = {
  decode: (b) => (need(b, b.length === 3, "client NDI"), { type: b[0]!, major: b[1]!, minor: b[2]! }),
  encode: (v) => Buffer.from([v.type, v.major, v.minor]),
};

/** Option 97: type 0 + 16-byte SMBIOS UUID whose first three fields are little-endian. */
export const guidCodec: Codec<string> = {
  decode: (b) => {
    need(b, b.length === 17 && b[0] === 0, "client GUID");
    const u = b.subarray(1);
    const h = (s: Buffer) => s.toString("hex");
    const le = (s: Buffer) => h(Buffer.from(s).reverse());
    return `${le(u.subarray(0, 4))}-${le(u.subarray(4, 6))}-${le(u.subarray(6, 8))}-${h(u.subarray(8, 10))}-${h(u.subarray(10, 16))}`;
  },
  encode: (v) => {
    const hex = v.replace(/-/g, "");
    if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new OptionError(`not a UUID: ${v}`);
    const u = Buffer.from(hex, "hex");
    const rev = (s: Buffer) => Buffer.from(s).reverse();
    return Buffer.concat([
      Buffer.from([0]),
      rev(u.subarray(0, 4)),
      rev(u.subarray(4, 6)),
      rev(u.subarray(6, 8)),
      u.subarray(8),
    ]);
  },
};

/** Every option Kindling understands, with its codec: the single source for decoding, encoding and tests. */
export const OPTION_CODECS = {
  [Opt.SubnetMask]: ipCodec,
  [Opt.Router]: ipListCodec,
  [Opt.DnsServers]: ipListCodec,
  [Opt.Hostname]: stringCodec,
  [Opt.DomainName]: stringCodec,
  [Opt.BroadcastAddress]: ipCodec,
  [Opt.VendorSpecific]: subOptionsCodec,
  [Opt.RequestedIp]: ipCodec,
  [Opt.LeaseTime]: u32Codec,
  [Opt.Overload]: u8Codec,
  [Opt.MessageType]: u8Codec,
  [Opt.ServerId]: ipCodec,
  [Opt.ParameterList]: u8ListCodec,
  [Opt.Message]: stringCodec,
  [Opt.MaxMessageSize]: u16Codec,
  [Opt.RenewalTime]: u32Codec,
  [Opt.RebindingTime]: u32Codec,
  [Opt.VendorClass]: stringCodec,
  [Opt.ClientId]: bytesCodec,
  [Opt.TftpServer]: stringCodec,
  [Opt.BootFile]: stringCodec,
  [Opt.UserClass]: userClassCodec,
  [Opt.RelayAgent]: subOptionsCodec,
  [Opt.ClientArch]: u16ListCodec,
  [Opt.ClientNdi]: ndiCodec,
  [Opt.ClientGuid]: guidCodec,
  [Opt.Ipxe]: subOptionsCodec,
} as const;
export type KnownOption = keyof typeof OPTION_CODECS;
export type OptionValue<C extends KnownOption> = (typeof OPTION_CODECS)[C] extends Codec<infer T> ? T : never;
