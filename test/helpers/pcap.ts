/**
 * Reads the DHCP replies out of a tcpdump capture (classic pcap, Ethernet link type): enough for tests that
 * check what servers actually sent, not what a client made of it.
 */
import { readFileSync } from "node:fs";
import { Opt } from "../../src/dhcp/options.ts";
import { decodePacket } from "../../src/dhcp/packet.ts";

export interface CapturedReply {
  /** IPv4 source of the datagram: which server sent it. */
  from: string;
  type: number | undefined;
  mac: string;
  yiaddr: string;
  serverId: string | undefined;
}

const ip4 = (b: Buffer, at: number) => `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;

export function dhcpReplies(file: string): CapturedReply[] {
  const b = readFileSync(file);
  if (b.length < 24) return [];
  const magic = b.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (!le && b.readUInt32BE(0) !== 0xa1b2c3d4 && b.readUInt32BE(0) !== 0xa1b23c4d)
    throw new Error(`${file}: not a pcap file`);
  const u32 = (at: number) => (le ? b.readUInt32LE(at) : b.readUInt32BE(at));
  if (u32(20) !== 1) throw new Error(`${file}: link type ${u32(20)}, expected Ethernet`);
  const out: CapturedReply[] = [];
  for (let at = 24; at + 16 <= b.length; ) {
    const caplen = u32(at + 8);
    const frame = b.subarray(at + 16, at + 16 + caplen);
    at += 16 + caplen;
    // Ethernet II carrying IPv4 carrying UDP from port 67.
    if (frame.length < 14 + 20 + 8 || frame.readUInt16BE(12) !== 0x0800) continue;
    const ihl = (frame[14]! & 0x0f) * 4;
    if (frame[14 + 9] !== 17) continue;
    const udp = 14 + ihl;
    if (frame.readUInt16BE(udp) !== 67) continue;
    const d = decodePacket(frame.subarray(udp + 8));
    if (!d.ok || d.packet.op !== 2) continue;
    const p = d.packet;
    out.push({
      from: ip4(frame, 14 + 12),
      type: p.options.get(Opt.MessageType),
      mac: [...p.chaddr.subarray(0, 6)].map((x) => x.toString(16).padStart(2, "0")).join(":"),
      yiaddr: p.yiaddr,
      serverId: p.options.get(Opt.ServerId),
    });
  }
  return out;
}
