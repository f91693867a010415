/**
 * /metrics after real traffic: curl downloads over TFTP (and asks for a file that is not there), iPXE asks
 * /ipxe, a relay agent on loopback runs a DHCP DISCOVER/REQUEST in full mode, garbage goes to both UDP
 * ports, and a Flatcar release syncs from a loopback origin. The exposition text is parsed and each
 * counter must have moved by what was done.
 */
import { execFile } from "node:child_process";
import { createSocket, type Socket } from "node:dgram";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MessageType, Opt } from "../../src/dhcp/options.ts";
import { DhcpOptions, type DhcpPacket, decodePacket, encodePacket } from "../../src/dhcp/packet.ts";
import { freeUdpPort, tempDir } from "../helpers/kindling.ts";
import { ipxeUntil, startWithRelease, VERSION } from "../helpers/release.ts";

const run = promisify(execFile);
const RELAY = "127.0.0.2";

/** Prometheus text format → sample value by `name{labels}` exactly as exposed (labels in exposition order). */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (!m) throw new Error(`not an exposition line: ${line}`);
    out.set(m[1]!, Number(m[2]));
  }
  return out;
}

let env: Awaited<ReturnType<typeof startWithRelease>>;
let tftpPort: number;
let dhcpPort: number;
let relay: Socket;
const inbox: DhcpPacket[] = [];

beforeAll(async () => {
  const root = tempDir("kindling-metrics-root-");
  mkdirSync(root, { recursive: true });
  writeFileSync(join(root, "undionly.kpxe"), Buffer.alloc(70_000, 7));
  tftpPort = await freeUdpPort();
  dhcpPort = await freeUdpPort();
  env = await startWithRelease({
    tftp: { host: "127.0.0.1", port: tftpPort, roots: [root], maxTransfersPerClient: 1 },
    dhcp: {
      mode: "full",
      port: dhcpPort,
      proxyPort: await freeUdpPort(),
      clientPort: await freeUdpPort(),
      subnets: [{ cidr: "127.0.0.0/8", ranges: [{ start: "127.0.9.1", end: "127.0.9.10" }], router: RELAY }],
    },
  });
  // A relay agent on giaddr at the server port: relayed replies come back here, never leave loopback.
  relay = createSocket({ type: "udp4", reuseAddr: true });
  await new Promise<void>((r) => relay.bind(dhcpPort, RELAY, r));
  relay.on("message", (msg) => {
    const d = decodePacket(msg);
    if (d.ok) inbox.push(d.packet);
  });
}, 60_000);

afterAll(async () => {
  relay?.close();
  await env?.stop();
});

let xid = 100;
async function dhcp(mac: string, type: number, set: (o: DhcpOptions) => void = () => {}): Promise<DhcpPacket> {
  const chaddr = Buffer.alloc(16);
  Buffer.from(mac.replace(/:/g, ""), "hex").copy(chaddr);
  const options = new DhcpOptions().set(Opt.MessageType, type);
  set(options);
  const p: DhcpPacket = {
    op: 1,
    htype: 1,
    hlen: 6,
    hops: 1,
    xid: xid++,
    secs: 0,
    flags: 0,
    ciaddr: "0.0.0.0",
    yiaddr: "0.0.0.0",
    siaddr: "0.0.0.0",
    giaddr: RELAY,
    chaddr,
    sname: "",
    file: "",
    options,
  };
  relay.send(encodePacket(p), dhcpPort, "127.0.0.1");
  const end = Date.now() + 3000;
  while (Date.now() < end) {
    const hit = inbox.find((r) => r.xid === p.xid);
    if (hit) return hit;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`no DHCP answer to message type ${type}`);
}

const scrape = async () => {
  const res = await fetch(`${env.k.url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toContain("text/plain");
  return parse(await res.text());
};

const garbage = (port: number) =>
  new Promise<void>((resolve, reject) => {
    const s = createSocket("udp4");
    s.send(Buffer.from("definitely not a packet"), port, "127.0.0.1", (err) => {
      s.close();
      if (err) reject(err);
      else resolve();
    });
  });

describe("/metrics", () => {
  it("moves every counter by the traffic it saw", async () => {
    const before = await scrape();
    const v = (m: Map<string, number>, key: string) => m.get(key) ?? 0;

    const out = tempDir("kindling-metrics-out-");
    await run("curl", ["-sS", "--fail", "-o", join(out, "a"), `tftp://127.0.0.1:${tftpPort}/undionly.kpxe`]);
    await expect(
      run("curl", ["-sS", "--fail", "-o", join(out, "b"), `tftp://127.0.0.1:${tftpPort}/missing.efi`]),
    ).rejects.toThrow();
    await garbage(tftpPort);
    await garbage(dhcpPort);

    const mac = "02:00:00:00:09:01";
    const offer = await dhcp(mac, MessageType.DISCOVER);
    expect(offer.options.get(Opt.MessageType)).toBe(MessageType.OFFER);
    const ack = await dhcp(mac, MessageType.REQUEST, (o) =>
      o.set(Opt.ServerId, "127.0.0.1").set(Opt.RequestedIp, offer.yiaddr),
    );
    expect(ack.options.get(Opt.MessageType)).toBe(MessageType.ACK);

    // A new machine asks iPXE for its script; assigning the install profile syncs the release from the origin.
    expect((await fetch(`${env.k.url}/ipxe?mac=52:54:00:aa:00:01`)).status).toBe(200);
    expect(
      (await env.k.api("/machines/52:54:00:aa:00:01", { method: "PATCH", json: { profile: "flatcar-install" } }))
        .status,
    ).toBe(200);
    await ipxeUntil(env.k, "mac=52:54:00:aa:00:01", VERSION);
    await env.k.api("/machines/not-a-mac");

    // The server counts malformed packets as they arrive, asynchronously to curl's exit.
    let after = await scrape();
    for (
      let i = 0;
      i < 50 &&
      (v(after, 'kindling_malformed_packets_total{protocol="tftp"}') < 1 ||
        v(after, 'kindling_malformed_packets_total{protocol="dhcp"}') < 1);
      i++
    ) {
      await new Promise((r) => setTimeout(r, 20));
      after = await scrape();
    }
    const moved = (key: string) => v(after, key) - v(before, key);

    expect(moved('kindling_tftp_transfers_total{outcome="done"}')).toBe(1);
    expect(moved('kindling_tftp_transfers_total{outcome="failed"}')).toBe(1);
    expect(moved("kindling_tftp_bytes_total")).toBe(70_000);
    expect(moved('kindling_malformed_packets_total{protocol="tftp"}')).toBe(1);
    expect(moved('kindling_malformed_packets_total{protocol="dhcp"}')).toBe(1);

    expect(moved('kindling_dhcp_packets_total{type="DISCOVER"}')).toBe(1);
    expect(moved('kindling_dhcp_packets_total{type="OFFER"}')).toBe(1);
    expect(moved('kindling_dhcp_packets_total{type="REQUEST"}')).toBe(1);
    expect(moved('kindling_dhcp_packets_total{type="ACK"}')).toBe(1);
    expect(moved('kindling_dhcp_requests_total{outcome="replied"}')).toBe(2);
    expect(after.get('kindling_dhcp_leases{subnet="127.0.0.0/8",state="used"}')).toBe(1);
    expect(after.get('kindling_dhcp_leases{subnet="127.0.0.0/8",state="free"}')).toBe(9);

    expect(moved('kindling_http_requests_total{method="GET",route="/ipxe",status="200"}')).toBeGreaterThanOrEqual(2);
    expect(moved('kindling_http_requests_total{method="PATCH",route="/api/v1/machines/:mac",status="200"}')).toBe(1);
    expect(moved('kindling_http_requests_total{method="GET",route="/api/v1/machines/:mac",status="400"}')).toBe(1);
    // Label values are route patterns: no raw MAC ever becomes a series.
    expect([...after.keys()].some((k) => k.includes("52:54:00"))).toBe(false);

    expect(moved('kindling_asset_syncs_total{outcome="done"}')).toBeGreaterThanOrEqual(1);
    const mirrored = (await (await env.k.api("/assets")).json()).releases as { version: string; bytes: number }[];
    expect(moved("kindling_asset_sync_bytes_total")).toBe(mirrored.find((r) => r.version === VERSION)!.bytes);
    expect(after.get('kindling_machines{state="ready"}')).toBe(1);
    expect(after.get('kindling_machines{state="discovered"}')).toBe(0);
    expect(after.get("kindling_tftp_active_transfers")).toBe(0);
  }, 60_000);

  it("counts TFTP requests a slot limit turned away", async () => {
    const before = await scrape();
    // Two read requests from one client that never acknowledges: with one slot per client the second waits
    // for nothing; it is dropped (the first is not stalled yet, so it does not give way).
    const rrq = Buffer.concat([Buffer.from([0, 1]), Buffer.from("undionly.kpxe\0octet\0")]);
    const sockets = [createSocket("udp4"), createSocket("udp4")];
    try {
      for (const s of sockets) {
        await new Promise<void>((r) => s.bind(0, "127.0.0.3", r));
        await new Promise<void>((r, j) => s.send(rrq, tftpPort, "127.0.0.1", (e) => (e ? j(e) : r())));
      }
      let after = await scrape();
      for (let i = 0; i < 50 && (after.get('kindling_tftp_requests_refused_total{reason="dropped"}') ?? 0) < 1; i++) {
        await new Promise((r) => setTimeout(r, 20));
        after = await scrape();
      }
      const moved = (key: string) => (after.get(key) ?? 0) - (before.get(key) ?? 0);
      expect(moved('kindling_tftp_requests_refused_total{reason="dropped"}')).toBe(1);
      expect(moved('kindling_tftp_requests_refused_total{reason="evicted"}')).toBe(0);
      expect(after.get("kindling_tftp_active_transfers")).toBe(1);
    } finally {
      for (const s of sockets) s.close();
    }
  });
});
