/**
 * A small scripted DHCP client for what the stock clients cannot do: PXE discovery with chosen 93/94/97/77/175
 * options, the proxyDHCP boot-server step on port 4011, and fuzzing. Run inside a namespace:
 * `ip netns exec NS npx tsx test/dhcp/client.ts '<json scenario>'`; prints one JSON result line.
 */
import { createSocket, type RemoteInfo } from "node:dgram";
import { MessageType, messageTypeName, Opt, PxeSub } from "../../src/dhcp/options.ts";
import { BROADCAST_FLAG, DhcpOptions, type DhcpPacket, decodePacket, encodePacket } from "../../src/dhcp/packet.ts";
import { prng } from "../helpers/prng.ts";
import { type FuzzNet, fuzzPacket } from "./mutate.ts";

export interface PxeScenario {
  op: "pxe";
  mac: string;
  arch?: number;
  vendorClass?: string;
  /** Raw bytes of option 77 as hex. */
  userClassHex?: string;
  ipxeOptions?: boolean;
  uuid?: string;
  /** Longest wait for replies to each step. */
  listenMs: number;
  /** Stop waiting for offers once this many have arrived (the 4011 step stops at its ACK). */
  expectOffers?: number;
  /** Our own address, for the port-4011 step (proxy mode). */
  ciaddr?: string;
  request4011?: boolean;
  serverPort?: number;
  proxyPort?: number;
}

export interface FuzzScenario {
  op: "fuzz";
  count: number;
  seed: number;
  net: FuzzNet;
  /**
   * Where packets go, a batch to each in turn. After each batch a probe the server answers (a plain DISCOVER,
   * a PXE DISCOVER, a PXE REQUEST to 4011) waits for its reply: the server has then read the batch, so the
   * fuzz measures what the server does with every packet, not what the socket buffer drops.
   */
  targets: { to: string; port: number; probe: "discover" | "pxe-discover" | "pxe-request" }[];
  batch?: number;
}

export interface FuzzResult {
  sent: number;
  bytes: number;
  /** Probes answered, and probes the server did not answer within PROBE_WAIT_MS. */
  probes: number;
  missed: number;
  ms: number;
}

/**
 * A hostile host on the segment (bench/hostile-dhcp.ts, test/hostile/dhcp.test.ts), bounded in rate, time and
 * count:
 * - `oversized`: 64 KiB datagrams whose body is option 53 repeated ~21,800 times;
 * - `spoofed-decline`: DECLINEs of pool addresses from made-up MACs that were never given them;
 * - `lease-decline`: relayed DISCOVERs from made-up MACs (giaddr = our own address, so the OFFERs come back to
 *   port 67 here), each OFFER answered with a DECLINE: the form that passes RFC 2131's check;
 * - `discover`: broadcast DISCOVERs from made-up MACs.
 */
export interface FloodScenario {
  op: "flood";
  kind: "oversized" | "spoofed-decline" | "lease-decline" | "discover";
  rate: number;
  seconds: number;
  /** Stop after this many packets, if sooner. */
  count?: number;
  server: string;
  /** Our own address (lease-decline's giaddr). */
  self: string;
  /** First three octets of the pool's /24, and the range of last octets spoofed DECLINEs name. */
  prefix: string;
  hosts: [number, number];
  seed: number;
}

export interface FloodResult {
  sent: number;
  /** lease-decline: DECLINEs sent for OFFERs received. */
  declined: number;
}

export interface ReplySummary {
  from: string;
  type: string | undefined;
  yiaddr: string;
  siaddr: string;
  file: string;
  serverId: string | undefined;
  vendorClass: string | undefined;
  sub43: Record<string, string> | undefined;
  sub175: Record<string, string> | undefined;
  guid: string | undefined;
  size: number;
}

const hexMap = (m: Map<number, Buffer> | undefined) =>
  m ? Object.fromEntries([...m].map(([k, v]) => [String(k), v.toString("hex")])) : undefined;

function summarize(msg: Buffer, rinfo: RemoteInfo): ReplySummary | undefined {
  const d = decodePacket(msg);
  if (!d.ok) return undefined;
  const p = d.packet;
  return {
    from: rinfo.address,
    type: messageTypeName(p.options.get(Opt.MessageType) ?? 0),
    yiaddr: p.yiaddr,
    siaddr: p.siaddr,
    file: p.file || p.options.get(Opt.BootFile) || "",
    serverId: p.options.get(Opt.ServerId),
    vendorClass: p.options.get(Opt.VendorClass),
    sub43: hexMap(p.options.get(Opt.VendorSpecific)),
    sub175: hexMap(p.options.get(Opt.Ipxe)),
    guid: p.options.get(Opt.ClientGuid),
    size: msg.length,
  };
}

function request(s: PxeScenario, type: number, ciaddr = "0.0.0.0"): DhcpPacket {
  const chaddr = Buffer.alloc(16);
  Buffer.from(s.mac.replace(/:/g, ""), "hex").copy(chaddr);
  const o = new DhcpOptions();
  o.set(Opt.MessageType, type);
  if (s.vendorClass) o.set(Opt.VendorClass, s.vendorClass);
  if (s.arch !== undefined) o.set(Opt.ClientArch, [s.arch]);
  o.set(Opt.ClientNdi, { type: 1, major: 3, minor: 16 });
  if (s.uuid) o.set(Opt.ClientGuid, s.uuid);
  if (s.userClassHex) o.setRaw(Opt.UserClass, Buffer.from(s.userClassHex, "hex"));
  if (s.ipxeOptions) o.setRaw(Opt.Ipxe, Buffer.from([19, 1, 1, 16, 1, 2]));
  if (type === MessageType.REQUEST)
    o.set(Opt.VendorSpecific, new Map([[PxeSub.BootItem, Buffer.from([0x80, 0x00, 0x00, 0x00])]]));
  return {
    op: 1,
    htype: 1,
    hlen: 6,
    hops: 0,
    xid: (Math.random() * 2 ** 32) >>> 0,
    secs: 0,
    flags: BROADCAST_FLAG,
    ciaddr,
    yiaddr: "0.0.0.0",
    siaddr: "0.0.0.0",
    giaddr: "0.0.0.0",
    chaddr,
    sname: "",
    file: "",
    options: o,
  };
}

async function pxe(s: PxeScenario): Promise<{ offers: ReplySummary[]; ack?: ReplySummary }> {
  const sock = createSocket({ type: "udp4", reuseAddr: true });
  await new Promise<void>((r) => sock.bind(68, "0.0.0.0", r));
  sock.setBroadcast(true);
  const replies: ReplySummary[] = [];
  sock.on("message", (msg, rinfo) => {
    const r = summarize(msg, rinfo);
    if (r) replies.push(r);
  });
  const waitFor = async (done: () => boolean) => {
    const end = Date.now() + s.listenMs;
    while (Date.now() < end && !done()) await new Promise((r) => setTimeout(r, 20));
  };
  const discover = request(s, MessageType.DISCOVER);
  sock.send(encodePacket(discover), s.serverPort ?? 67, "255.255.255.255");
  await waitFor(
    () => s.expectOffers !== undefined && replies.filter((r) => r.type === "OFFER").length >= s.expectOffers,
  );
  const offers = replies.filter((r) => r.type === "OFFER");
  let ack: ReplySummary | undefined;
  const proxyOffer = offers.find((o) => o.vendorClass === "PXEClient" && o.yiaddr === "0.0.0.0");
  if (s.request4011 && proxyOffer) {
    replies.length = 0;
    sock.send(encodePacket(request(s, MessageType.REQUEST, s.ciaddr)), s.proxyPort ?? 4011, proxyOffer.siaddr);
    await waitFor(() => replies.some((r) => r.type === "ACK"));
    ack = replies.find((r) => r.type === "ACK");
  }
  sock.close();
  return { offers, ...(ack ? { ack } : {}) };
}

const PROBE_WAIT_MS = 2000;

async function fuzz(s: FuzzScenario): Promise<FuzzResult> {
  const rnd = prng(s.seed);
  const sock = createSocket({ type: "udp4", reuseAddr: true });
  // Port 68: replies to the probes come back by broadcast.
  await new Promise<void>((r) => sock.bind(68, "0.0.0.0", r));
  sock.setBroadcast(true);
  sock.on("error", (err) => {
    process.stderr.write(`fuzz: ${err.message}\n`);
    process.exit(1);
  });
  let waiting: { xid: number; done: () => void } | undefined;
  sock.on("message", (msg) => {
    if (waiting && msg.length >= 8 && msg.readUInt32BE(4) === waiting.xid) waiting.done();
  });
  const probe = async (t: FuzzScenario["targets"][number]): Promise<boolean> => {
    const pxe: PxeScenario = {
      op: "pxe",
      mac: "02:fe:00:00:00:01",
      listenMs: 0,
      ...(t.probe === "discover" ? {} : { arch: 0, vendorClass: "PXEClient:Arch:00000:UNDI:002001" }),
    };
    const p = request(pxe, t.probe === "pxe-request" ? MessageType.REQUEST : MessageType.DISCOVER);
    const answered = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), PROBE_WAIT_MS);
      waiting = { xid: p.xid, done: () => (clearTimeout(timer), resolve(true)) };
    });
    sock.send(encodePacket(p), t.port, t.to);
    const ok = await answered;
    waiting = undefined;
    return ok;
  };
  const batch = s.batch ?? 500;
  const start = Date.now();
  const result: FuzzResult = { sent: 0, bytes: 0, probes: 0, missed: 0, ms: 0 };
  for (let i = 0; result.sent < s.count; i++) {
    const t = s.targets[i % s.targets.length]!;
    for (let k = 0; k < batch && result.sent < s.count; k++) {
      const pkt = fuzzPacket(rnd, s.net);
      sock.send(pkt, t.port, t.to);
      result.sent++;
      result.bytes += pkt.length;
    }
    if (await probe(t)) result.probes++;
    else result.missed++;
  }
  result.ms = Date.now() - start;
  sock.close();
  return result;
}

function packetFrom(mac: Buffer, type: number, set: (o: DhcpOptions) => void, giaddr = "0.0.0.0"): Buffer {
  const chaddr = Buffer.alloc(16);
  mac.copy(chaddr);
  const o = new DhcpOptions().set(Opt.MessageType, type);
  set(o);
  return encodePacket({
    op: 1,
    htype: 1,
    hlen: 6,
    hops: giaddr === "0.0.0.0" ? 0 : 1,
    xid: (Math.random() * 2 ** 32) >>> 0,
    secs: 0,
    flags: BROADCAST_FLAG,
    ciaddr: "0.0.0.0",
    yiaddr: "0.0.0.0",
    siaddr: "0.0.0.0",
    giaddr,
    chaddr,
    sname: "",
    file: "",
    options: o,
  });
}

/** 64 KiB (the largest UDP payload) of option 53 repeated after a valid header: the datagram of issue 13. */
function oversized(): Buffer {
  const b = Buffer.alloc(65_507);
  packetFrom(Buffer.from([2, 0xee, 0, 0, 0, 1]), MessageType.DISCOVER, () => {}).copy(b, 0, 0, 240);
  let i = 240;
  for (; i + 3 < b.length; i += 3) b.set([Opt.MessageType, 1, 1], i);
  b[i] = Opt.End;
  return b;
}

async function flood(s: FloodScenario): Promise<FloodResult> {
  const rnd = prng(s.seed);
  const mac = () => Buffer.from([0x02, 0xee, ...Array.from({ length: 4 }, () => Math.floor(rnd() * 256))]);
  const sock = createSocket({ type: "udp4", reuseAddr: true });
  // lease-decline plays a relay: the server answers it on port 67.
  await new Promise<void>((r) => sock.bind(s.kind === "lease-decline" ? 67 : 0, "0.0.0.0", r));
  sock.setBroadcast(true);
  const result: FloodResult = { sent: 0, declined: 0 };
  sock.on("message", (msg) => {
    const d = decodePacket(msg);
    if (!d.ok || d.packet.options.get(Opt.MessageType) !== MessageType.OFFER) return;
    const decline = packetFrom(
      d.packet.chaddr,
      MessageType.DECLINE,
      (o) => o.set(Opt.ServerId, s.server).set(Opt.RequestedIp, d.packet.yiaddr),
      s.self,
    );
    sock.send(decline, 67, s.server);
    result.declined++;
  });
  const big = s.kind === "oversized" ? oversized() : undefined;
  const next = (): [Buffer, string] => {
    switch (s.kind) {
      case "oversized":
        return [big!, s.server];
      case "spoofed-decline": {
        const ip = `${s.prefix}.${s.hosts[0] + Math.floor(rnd() * (s.hosts[1] - s.hosts[0] + 1))}`;
        return [
          packetFrom(mac(), MessageType.DECLINE, (o) => o.set(Opt.ServerId, s.server).set(Opt.RequestedIp, ip)),
          "255.255.255.255",
        ];
      }
      case "lease-decline":
        return [packetFrom(mac(), MessageType.DISCOVER, () => {}, s.self), s.server];
      default:
        return [packetFrom(mac(), MessageType.DISCOVER, () => {}), "255.255.255.255"];
    }
  };
  // Sent in 10 ms slices so the rate holds without a timer per packet.
  const start = Date.now();
  const limit = s.count ?? Infinity;
  while (Date.now() - start < s.seconds * 1000 && result.sent < limit) {
    const due = Math.min(limit, Math.floor(((Date.now() - start) / 1000) * s.rate));
    while (result.sent < due) {
      const [pkt, to] = next();
      sock.send(pkt, 67, to);
      result.sent++;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  // Late OFFERs still get their DECLINE.
  await new Promise((r) => setTimeout(r, 300));
  sock.close();
  return result;
}

const scenario = JSON.parse(process.argv[2]!) as PxeScenario | FuzzScenario | FloodScenario;
const result =
  scenario.op === "pxe" ? await pxe(scenario) : scenario.op === "fuzz" ? await fuzz(scenario) : await flood(scenario);
process.stdout.write(`${JSON.stringify(result)}\n`);
