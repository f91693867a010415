/**
 * Seeded DHCP fuzz packets: well-formed client messages of every kind Kindling serves (DISCOVER, the three
 * REQUESTs, DECLINE, RELEASE, INFORM; plain, PXE, UEFI HTTP and iPXE clients; direct and relayed; long
 * options split per RFC 3396, option overload), then mutated: flipped bytes and header fields, truncations,
 * inserted options with lying lengths, options repeated hundreds of times, oversized datagrams, garbage.
 * Pure: the same seed gives the same packets, so a failing run is replayed from its printed seed.
 */
import { MessageType, Opt, PxeSub } from "../../src/dhcp/options.ts";
import { BROADCAST_FLAG, DhcpOptions, type DhcpPacket, encodePacket } from "../../src/dhcp/packet.ts";

export interface FuzzNet {
  /** The server's address: option 54 and unicast target. */
  server: string;
  /** First three octets of the served /24 (`10.81.0`): requested and client addresses come from there. */
  prefix: string;
  /** A relay address inside the subnet (giaddr of relayed variants): replies to it stay on the test link. */
  relay: string;
}

type Rnd = () => number;

/** Client kinds with the options their firmware sends. */
const KINDS: ((o: DhcpOptions, r: Rnd) => void)[] = [
  () => {},
  (o) => o.set(Opt.VendorClass, "PXEClient:Arch:00000:UNDI:002001").set(Opt.ClientArch, [0]),
  (o) => o.set(Opt.VendorClass, "PXEClient:Arch:00007:UNDI:003016").set(Opt.ClientArch, [7]),
  (o) => o.set(Opt.VendorClass, "HTTPClient:Arch:00016:UNDI:003001").set(Opt.ClientArch, [16]),
  (o) =>
    o
      .set(Opt.VendorClass, "PXEClient:Arch:00007:UNDI:003016")
      .set(Opt.UserClass, { classes: ["iPXE"], rfc3004: false })
      .setRaw(Opt.Ipxe, Buffer.from([19, 1, 1, 16, 1, 2])),
  (o, r) => o.set(Opt.VendorClass, "PXEClient").set(Opt.ClientArch, [Math.floor(r() * 65536)]),
];

const int = (r: Rnd, n: number) => Math.floor(r() * n);
const bytes = (r: Rnd, n: number) => Buffer.from(Array.from({ length: n }, () => int(r, 256)));

/** A MAC from a small set (so requests meet the state earlier ones left) or, rarely, any. */
function mac(r: Rnd): Buffer {
  const b = Buffer.alloc(16);
  if (r() < 0.05) bytes(r, 6).copy(b);
  else Buffer.from([0x02, 0xf0, 0, 0, 0, int(r, 256)]).copy(b);
  return b;
}

function address(r: Rnd, net: FuzzNet): string {
  const p = r();
  if (p < 0.7) return `${net.prefix}.${int(r, 256)}`;
  if (p < 0.8) return net.server;
  return [0, 0, 0, 0].map(() => int(r, 256)).join(".");
}

/** A well-formed client message. */
function valid(r: Rnd, net: FuzzNet): DhcpPacket {
  const o = new DhcpOptions();
  const types = [
    MessageType.DISCOVER,
    MessageType.REQUEST,
    MessageType.DECLINE,
    MessageType.RELEASE,
    MessageType.INFORM,
  ] as const;
  const type = r() < 0.03 ? int(r, 256) : types[int(r, types.length)]!;
  o.set(Opt.MessageType, type);
  KINDS[int(r, KINDS.length)]!(o, r);
  let ciaddr = "0.0.0.0";
  const step = int(r, 3);
  if (type === MessageType.REQUEST) {
    // SELECTING, INIT-REBOOT, RENEWING/REBINDING.
    if (step === 0) o.set(Opt.ServerId, r() < 0.8 ? net.server : address(r, net)).set(Opt.RequestedIp, address(r, net));
    else if (step === 1) o.set(Opt.RequestedIp, address(r, net));
    else ciaddr = address(r, net);
  } else if (type === MessageType.DECLINE) {
    if (r() < 0.9) o.set(Opt.ServerId, net.server);
    if (r() < 0.9) o.set(Opt.RequestedIp, address(r, net));
  } else if (type === MessageType.RELEASE || type === MessageType.INFORM) {
    ciaddr = address(r, net);
    if (r() < 0.5) o.set(Opt.ServerId, net.server);
  } else if (r() < 0.3) o.set(Opt.RequestedIp, address(r, net));
  if (r() < 0.3) o.set(Opt.ClientGuid, "11111111-2222-3333-4444-555555555555");
  if (r() < 0.3) o.set(Opt.ParameterList, [1, 3, 6, 15, 43, 60, 66, 67, 175]);
  if (r() < 0.2) o.set(Opt.MaxMessageSize, int(r, 65536));
  if (r() < 0.2) o.set(Opt.Hostname, "n".repeat(1 + int(r, 400)));
  if (r() < 0.1) o.set(Opt.ClientId, bytes(r, 1 + int(r, 40)));
  if (r() < 0.1) o.set(Opt.VendorSpecific, new Map([[PxeSub.BootItem, bytes(r, int(r, 8))]]));
  // A long option split over several instances (RFC 3396).
  if (r() < 0.05) o.setRaw(200 + int(r, 50), bytes(r, 256 + int(r, 600)));
  const relayed = r() < 0.3;
  if (relayed && r() < 0.5) o.setRaw(Opt.RelayAgent, Buffer.concat([Buffer.from([1, 6]), bytes(r, 6)]));
  return {
    op: 1,
    htype: 1,
    hlen: 6,
    hops: relayed ? 1 : 0,
    xid: int(r, 2 ** 32),
    secs: int(r, 10),
    flags: r() < 0.5 ? BROADCAST_FLAG : 0,
    ciaddr,
    yiaddr: "0.0.0.0",
    siaddr: "0.0.0.0",
    giaddr: relayed ? (r() < 0.9 ? net.relay : address(r, net)) : "0.0.0.0",
    chaddr: mac(r),
    sname: "",
    file: "",
    options: o,
  };
}

/** Raw option triples with whatever lengths, some lying. */
function optionSoup(r: Rnd, n: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const len = int(r, 40);
    parts.push(Buffer.from([int(r, 256), r() < 0.1 ? int(r, 256) : len]), bytes(r, len));
  }
  return Buffer.concat(parts);
}

function mutate(r: Rnd, b: Buffer): Buffer {
  switch (int(r, 9)) {
    case 0: // flipped bytes anywhere
      for (let k = 0, n = 1 + int(r, 12); k < n; k++) b[int(r, b.length)] = int(r, 256);
      return b;
    case 1: // truncated anywhere
      return b.subarray(0, int(r, b.length));
    case 2: // header fields out of range: op, htype, hlen, hops
      b[int(r, 4)] = int(r, 256);
      return b;
    case 3: // options replaced by a soup after the cookie
      return Buffer.concat([b.subarray(0, 240), optionSoup(r, 1 + int(r, 30))]);
    case 4: {
      // one option repeated many times, sometimes past the per-packet cap
      const code = [53, 60, 43, 82, 77, 93, 97, 12, 52, 250][int(r, 10)]!;
      const one = Buffer.from([code, 1, int(r, 256)]);
      return Buffer.concat([
        b.subarray(0, 240),
        ...Array.from({ length: 1 + int(r, 700) }, () => one),
        Buffer.from([255]),
      ]);
    }
    case 5: {
      // option overload (52) pointing at file/sname fields full of anything
      const c = Buffer.from(b);
      if (r() < 0.5) bytes(r, 128).copy(c, 108);
      if (r() < 0.5) optionSoup(r, 4).copy(c, 44, 0, 64);
      return Buffer.concat([c.subarray(0, 240), Buffer.from([52, 1, int(r, 5)]), c.subarray(240)]);
    }
    case 6: // garbage appended
      return Buffer.concat([b, bytes(r, int(r, 300))]);
    case 7: // an oversized datagram
      return r() < 0.1 ? Buffer.concat([b, Buffer.alloc(int(r, 65_000), int(r, 256))]) : b;
    default: // left as it is
      return b;
  }
}

/** One fuzz datagram. */
export function fuzzPacket(r: Rnd, net: FuzzNet): Buffer {
  if (r() < 0.05) return bytes(r, int(r, 700));
  const p = valid(r, net);
  let b: Buffer;
  try {
    b = Buffer.from(encodePacket(p, 576 + int(r, 1000)));
  } catch {
    b = Buffer.from(encodePacket(p, 4000)); // long options that did not fit the size drawn
  }
  for (let k = 0, n = int(r, 3); k < n; k++) b = mutate(r, b);
  return b;
}
