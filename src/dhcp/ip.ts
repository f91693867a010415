/** IPv4 arithmetic on unsigned 32-bit integers, for subnets and pools. */

import { writeIp } from "./options.ts";

const scratch = Buffer.alloc(4);
/** Validating parse (throws OptionError on anything but a dotted quad). */
export function ipToInt(ip: string): number {
  writeIp(ip, scratch, 0);
  return scratch.readUInt32BE(0);
}
export const intToIp = (n: number): string => `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;

export interface Cidr {
  network: number;
  prefix: number;
  mask: number;
  broadcast: number;
}

export function parseCidr(cidr: string): Cidr {
  const [addr, bits] = cidr.split("/");
  const prefix = Number(bits);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const network = (ipToInt(addr!) & mask) >>> 0;
  return { network, prefix, mask, broadcast: (network | ~mask) >>> 0 };
}

export const inCidr = (c: Cidr, ip: string | number): boolean =>
  ((typeof ip === "number" ? ip : ipToInt(ip)) & c.mask) >>> 0 === c.network;

/** `255.255.255.0` → 24; used to turn an interface's netmask into a prefix. */
export const maskToPrefix = (mask: string): number => ipToInt(mask).toString(2).replace(/0+$/, "").length;
