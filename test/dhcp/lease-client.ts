/**
 * A scripted DHCP client for many clients at once, run inside a test namespace:
 * `ip netns exec NS tsx test/dhcp/lease-client.ts '<json scenario>'` (or `@file` holding it: thousands of
 * clients exceed what one argument may hold); prints one JSON result line.
 * - `dora`: each MAC broadcasts a DISCOVER, REQUESTs the first OFFER (server identifier set), and records its
 *   ACK or NAK;
 * - `renew`: each (MAC, address) REQUESTs its address again without a server identifier: as a rebooting
 *   client does (INIT-REBOOT: the address in option 50, replies broadcast), or with `ciaddr` as a client in
 *   RENEWING (unicast to `to`) or REBINDING (broadcast) does; the reply then goes to that address, which the
 *   client's namespace must hold.
 * - `request`: each (MAC, address, server) REQUESTs the address naming that server, as a client SELECTING an
 *   offer does, all at once: two clients naming one address through two servers race for it.
 * At most `concurrency` exchanges in flight, each retried up to 3 times, `timeoutMs` apart; the whole run is
 * bounded by the number of clients times that.
 */
import { createSocket } from "node:dgram";
import { readFileSync } from "node:fs";
import { MessageType, messageTypeName, Opt } from "../../src/dhcp/options.ts";
import { BROADCAST_FLAG, DhcpOptions, type DhcpPacket, decodePacket, encodePacket } from "../../src/dhcp/packet.ts";

export interface DoraScenario {
  op: "dora";
  macs: string[];
  concurrency?: number;
  timeoutMs?: number;
}
export interface RenewScenario {
  op: "renew";
  leases: { mac: string; ip: string }[];
  /** Where the REQUEST goes: 255.255.255.255, or a server's address. */
  to: string;
  /** Name the address in ciaddr (RENEWING/REBINDING) instead of option 50 (INIT-REBOOT). */
  ciaddr?: boolean;
  concurrency?: number;
  timeoutMs?: number;
}
export interface RequestScenario {
  op: "request";
  requests: { mac: string; ip: string; server: string }[];
  concurrency?: number;
  timeoutMs?: number;
}
export interface Answer {
  mac: string;
  type: string;
  ip: string;
  server: string | undefined;
  message?: string | undefined;
}
export interface LeaseClientResult {
  answers: Answer[];
  /** MACs that got no final answer (ACK or NAK) after every retry. */
  silent: string[];
}

const RETRIES = 3;

function packet(
  mac: string,
  type: number,
  xid: number,
  opts: { ciaddr?: string; requested?: string; server?: string },
) {
  const chaddr = Buffer.alloc(16);
  Buffer.from(mac.replace(/:/g, ""), "hex").copy(chaddr);
  const o = new DhcpOptions();
  o.set(Opt.MessageType, type);
  if (opts.requested) o.set(Opt.RequestedIp, opts.requested);
  if (opts.server) o.set(Opt.ServerId, opts.server);
  const p: DhcpPacket = {
    op: 1,
    htype: 1,
    hlen: 6,
    hops: 0,
    xid,
    secs: 0,
    flags: BROADCAST_FLAG,
    ciaddr: opts.ciaddr ?? "0.0.0.0",
    yiaddr: "0.0.0.0",
    siaddr: "0.0.0.0",
    giaddr: "0.0.0.0",
    chaddr,
    sname: "",
    file: "",
    options: o,
  };
  return encodePacket(p);
}

async function run(s: DoraScenario | RenewScenario | RequestScenario): Promise<LeaseClientResult> {
  const sock = createSocket({ type: "udp4", reuseAddr: true });
  await new Promise<void>((r) => sock.bind(68, "0.0.0.0", r));
  sock.setBroadcast(true);
  const waiting = new Map<number, (p: DhcpPacket) => void>();
  sock.on("message", (msg) => {
    const d = decodePacket(msg);
    if (d.ok) waiting.get(d.packet.xid)?.(d.packet);
  });
  let xids = (Math.random() * 2 ** 31) >>> 0;
  /** Sends `bytes(xid)` and waits for a reply `accept` takes, retrying; undefined if none came. */
  const exchange = async (bytes: (xid: number) => Buffer, to: string, accept: (p: DhcpPacket) => boolean) => {
    for (let attempt = 0; attempt < RETRIES; attempt++) {
      const xid = ++xids >>> 0;
      const reply = new Promise<DhcpPacket | undefined>((resolve) => {
        const t = setTimeout(() => resolve(undefined), s.timeoutMs ?? 1000);
        waiting.set(xid, (p) => {
          if (!accept(p)) return;
          clearTimeout(t);
          resolve(p);
        });
      });
      sock.send(bytes(xid), 67, to);
      const p = await reply;
      waiting.delete(xid);
      if (p) return p;
    }
    return undefined;
  };
  const type = (p: DhcpPacket) => p.options.get(Opt.MessageType);
  const final = (p: DhcpPacket) => type(p) === MessageType.ACK || type(p) === MessageType.NAK;
  const answer = (mac: string, p: DhcpPacket): Answer => ({
    mac,
    type: messageTypeName(type(p) ?? 0) ?? "?",
    ip: p.yiaddr,
    server: p.options.get(Opt.ServerId),
    message: p.options.get(Opt.Message),
  });

  const answers: Answer[] = [];
  const silent: string[] = [];
  const one = async (mac: string, ip?: string, server?: string) => {
    let reply: DhcpPacket | undefined;
    if (s.op === "dora") {
      const offer = await exchange(
        (xid) => packet(mac, MessageType.DISCOVER, xid, {}),
        "255.255.255.255",
        (p) => type(p) === MessageType.OFFER,
      );
      if (offer)
        reply = await exchange(
          (xid) =>
            packet(mac, MessageType.REQUEST, xid, { requested: offer.yiaddr, server: offer.options.get(Opt.ServerId) }),
          "255.255.255.255",
          final,
        );
    } else if (s.op === "request") {
      reply = await exchange(
        (xid) => packet(mac, MessageType.REQUEST, xid, { requested: ip, server }),
        "255.255.255.255",
        final,
      );
    } else {
      const how = s.ciaddr ? { ciaddr: ip } : { requested: ip };
      reply = await exchange((xid) => packet(mac, MessageType.REQUEST, xid, how), s.to, final);
    }
    if (reply) answers.push(answer(mac, reply));
    else silent.push(mac);
  };
  const work: [string, string | undefined, string | undefined][] =
    s.op === "dora"
      ? s.macs.map((m) => [m, undefined, undefined])
      : s.op === "request"
        ? s.requests.map((r) => [r.mac, r.ip, r.server])
        : s.leases.map((l) => [l.mac, l.ip, undefined]);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(s.concurrency ?? 32, work.length) }, async () => {
      while (next < work.length) {
        const [mac, ip, server] = work[next++]!;
        await one(mac, ip, server);
      }
    }),
  );
  sock.close();
  return { answers, silent };
}

const arg = process.argv[2]!;
const text = arg.startsWith("@") ? readFileSync(arg.slice(1), "utf8") : arg;
const result = await run(JSON.parse(text) as DoraScenario | RenewScenario | RequestScenario);
process.stdout.write(`${JSON.stringify(result)}\n`);
