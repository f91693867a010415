/**
 * The server in-process on loopback (high ports, no root needed), driven by a socket that plays a relay
 * agent: relayed DORA with option 82 echoed to giaddr, INIT-REBOOT NAK, DECLINE quarantine, INFORM,
 * a client choosing another server, pool exhaustion, malformed input.
 */
import { createSocket, type Socket } from "node:dgram";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DhcpConfigSchema } from "../../src/dhcp/config.ts";
import { MessageType, Opt } from "../../src/dhcp/options.ts";
import { type DhcpOptions, type DhcpPacket, encodePacket } from "../../src/dhcp/packet.ts";
import { DhcpServer } from "../../src/dhcp/server.ts";
import { silentLogger } from "../../src/log.ts";
import type { EventInput } from "../../src/model/event.ts";
import type { Store } from "../../src/store/index.ts";
import { machinesFor } from "../helpers/machines.ts";
import { type RelayLab, relayedRequest, startRelayLab } from "./relay-agent.ts";

const PORT = 20000 + (process.pid % 20000);
const RELAY = "127.0.0.2";
let lab: RelayLab;
let store: Store;
let server: DhcpServer;
let relay: Socket;
let events: EventInput[];

beforeAll(async () => {
  lab = await startRelayLab(
    {
      mode: "full",
      clientPort: PORT + 1,
      subnets: [
        { cidr: "127.0.0.0/8", ranges: [{ start: "127.0.5.1", end: "127.0.5.3" }], router: RELAY, leaseSeconds: 120 },
      ],
    },
    PORT,
    RELAY,
  );
  ({ store, server, relay, events } = lab);
});
afterAll(() => lab?.close());

const req = (mac: string, type: number, set?: (o: DhcpOptions) => void, fields?: Partial<DhcpPacket>) =>
  relayedRequest(RELAY, mac, type, set, fields);
const exchange = (p: DhcpPacket, expectReply = true) => lab.exchange(p, expectReply);
const type = (p: DhcpPacket | undefined) => p?.options.get(Opt.MessageType);

describe("relayed full mode on loopback", () => {
  const agent = Buffer.from("0106706f72742d31", "hex");
  it("answers a relayed DISCOVER/REQUEST at giaddr with option 82 echoed unchanged", async () => {
    const mac = "02:00:00:00:01:01";
    const offer = await exchange(req(mac, MessageType.DISCOVER, (o) => o.setRaw(Opt.RelayAgent, agent)));
    expect(type(offer)).toBe(MessageType.OFFER);
    expect(offer!.yiaddr).toBe("127.0.5.1");
    expect(offer!.giaddr).toBe(RELAY);
    expect(offer!.options.raw.get(Opt.RelayAgent)).toEqual(agent);
    expect(offer!.options.get(Opt.ServerId)).toBe("127.0.0.1");
    expect(offer!.options.get(Opt.LeaseTime)).toBe(120);
    expect(offer!.options.get(Opt.RenewalTime)).toBe(60);
    expect(offer!.options.get(Opt.SubnetMask)).toBe("255.0.0.0");
    const ack = await exchange(
      req(mac, MessageType.REQUEST, (o) =>
        o.set(Opt.ServerId, "127.0.0.1").set(Opt.RequestedIp, "127.0.5.1").setRaw(Opt.RelayAgent, agent),
      ),
    );
    expect(type(ack)).toBe(MessageType.ACK);
    expect(ack!.yiaddr).toBe("127.0.5.1");
    expect(ack!.options.raw.get(Opt.RelayAgent)).toEqual(agent);
    expect(store.db.prepare("SELECT state FROM leases WHERE ip = ?").get("127.0.5.1")).toEqual({ state: "bound" });
  });

  it("NAKs an INIT-REBOOT for an address that is not on the client's network, or that someone else holds", async () => {
    const mac = "02:00:00:00:01:02";
    const foreign = await exchange(req(mac, MessageType.REQUEST, (o) => o.set(Opt.RequestedIp, "192.168.7.7")));
    expect(type(foreign)).toBe(MessageType.NAK);
    expect(foreign!.options.get(Opt.Message)).toMatch(/not on this network/);
    const taken = await exchange(req(mac, MessageType.REQUEST, (o) => o.set(Opt.RequestedIp, "127.0.5.1")));
    expect(type(taken)).toBe(MessageType.NAK);
    expect(events.filter((e) => e.kind === "dhcp.nak")).toHaveLength(2);
  });

  it("frees an offer when the client picks another server, and quarantines a declined address", async () => {
    const mac = "02:00:00:00:01:03";
    const offer = await exchange(req(mac, MessageType.DISCOVER));
    expect(offer!.yiaddr).toBe("127.0.5.2");
    expect(
      await exchange(
        req(mac, MessageType.REQUEST, (o) => o.set(Opt.ServerId, "127.9.9.9").set(Opt.RequestedIp, "127.0.9.9")),
        false,
      ),
    ).toBeUndefined();
    expect(server.stats().leases).toEqual([{ subnet: "127.0.0.0/8", used: 1, free: 2, quarantined: 0 }]);

    const other = "02:00:00:00:01:04";
    const o2 = await exchange(req(other, MessageType.DISCOVER));
    const ip = o2!.yiaddr;
    expect(
      type(
        await exchange(
          req(other, MessageType.REQUEST, (o) => o.set(Opt.ServerId, "127.0.0.1").set(Opt.RequestedIp, ip)),
        ),
      ),
    ).toBe(MessageType.ACK);
    // A DECLINE counts only from the client holding the address (RFC 2131 4.3.3), and must name this server.
    const before = server.stats().dropped;
    const decline = (from: string, set: (o: DhcpOptions) => void) =>
      exchange(req(from, MessageType.DECLINE, set), false);
    await decline("02:00:00:00:01:05", (o) => o.set(Opt.ServerId, "127.0.0.1").set(Opt.RequestedIp, ip));
    await decline(other, (o) => o.set(Opt.RequestedIp, ip));
    await decline(other, (o) => o.set(Opt.ServerId, "127.0.0.1").set(Opt.RequestedIp, "127.0.5.1"));
    expect(server.stats().dropped - before).toBe(3);
    expect(store.db.prepare("SELECT state FROM leases WHERE ip = ?").get(ip)).toEqual({ state: "bound" });
    await decline(other, (o) => o.set(Opt.ServerId, "127.0.0.1").set(Opt.RequestedIp, ip));
    expect(store.db.prepare("SELECT state FROM leases WHERE ip = ?").get(ip)).toEqual({ state: "declined" });
    expect(events.some((e) => e.kind === "dhcp.decline" && e.detail?.ip === ip)).toBe(true);
    const o3 = await exchange(req(other, MessageType.DISCOVER));
    expect(o3!.yiaddr).toMatch(/^127\.0\.5\.[123]$/);
    expect(o3!.yiaddr).not.toBe(ip);
    expect(o3!.yiaddr).not.toBe("127.0.5.1");
    expect(server.stats().leases?.[0]?.quarantined).toBe(1);
    const ack3 = await exchange(
      req(other, MessageType.REQUEST, (o) => o.set(Opt.ServerId, "127.0.0.1").set(Opt.RequestedIp, o3!.yiaddr)),
    );
    expect(type(ack3)).toBe(MessageType.ACK);
  });

  it("reports an exhausted pool as an event and a metric, and keeps serving", async () => {
    // Two addresses bound, one declined: nothing left for a newcomer.
    expect(await exchange(req("02:00:00:00:01:06", MessageType.DISCOVER), false)).toBeUndefined();
    expect(events.filter((e) => e.kind === "dhcp.pool-exhausted").map((e) => e.detail)).toEqual([
      expect.objectContaining({ subnet: "127.0.0.0/8", unanswered: 1 }),
    ]);
    // More newcomers within the report interval: still unanswered, but no event row per packet.
    for (const n of [7, 8, 9])
      expect(await exchange(req(`02:00:00:00:02:0${n}`, MessageType.DISCOVER), false)).toBeUndefined();
    expect(events.filter((e) => e.kind === "dhcp.pool-exhausted")).toHaveLength(1);
    expect(server.stats().leases?.[0]?.free).toBe(0);
    // A known client is still answered.
    expect(type(await exchange(req("02:00:00:00:01:01", MessageType.DISCOVER)))).toBe(MessageType.OFFER);
  });

  it("answers INFORM with configuration but no address or lease time", async () => {
    const ack = await exchange(req("02:00:00:00:01:07", MessageType.INFORM, () => {}, { ciaddr: "127.0.7.7" }));
    expect(type(ack)).toBe(MessageType.ACK);
    expect(ack!.yiaddr).toBe("0.0.0.0");
    expect(ack!.options.get(Opt.Router)).toEqual([RELAY]);
    expect(ack!.options.has(Opt.LeaseTime)).toBe(false);
  });

  it("counts malformed packets and keeps going", async () => {
    const before = server.stats();
    relay.send(Buffer.from("not dhcp at all"), PORT, "127.0.0.1");
    relay.send(encodePacket(req("02:00:00:00:01:08", MessageType.DISCOVER)).subarray(0, 200), PORT, "127.0.0.1");
    relay.send(
      encodePacket(req("02:00:00:00:01:08", MessageType.DISCOVER, (o) => o.setRaw(Opt.ClientArch, Buffer.from([1])))),
      PORT,
      "127.0.0.1",
    );
    await new Promise((r) => setTimeout(r, 200));
    const after = server.stats();
    expect(after.malformed - before.malformed).toBe(3);
    expect(type(await exchange(req("02:00:00:00:01:01", MessageType.DISCOVER)))).toBe(MessageType.OFFER);
  });
});

describe("an advertised address no interface holds", () => {
  it("is said at start, with what to set", async () => {
    const lines: string[] = [];
    const log = pino({ level: "warn" }, { write: (l: string) => void lines.push(l) });
    const server = await DhcpServer.start({
      config: DhcpConfigSchema.parse({ mode: "proxy", port: PORT + 3, proxyPort: 0 }),
      advertise: "192.0.2.1", // TEST-NET-1: on no interface of this host
      httpPort: 8080,
      tftpEnabled: true,
      db: store.db,
      machines: machinesFor(store),
      events: { append: () => {} },
      log,
    });
    await server.close();
    const warning = lines.map((l) => JSON.parse(l) as { msg: string }).find((l) => l.msg.includes("192.0.2.1"));
    expect(warning?.msg).toContain("no interface holds the advertised address 192.0.2.1");
    expect(warning?.msg).toContain("dhcp.interfaces");
  });
});

describe("mode off", () => {
  it("binds nothing", async () => {
    const port = PORT + 2;
    const off = await DhcpServer.start({
      config: DhcpConfigSchema.parse({ mode: "off", port }),
      advertise: "127.0.0.1",
      httpPort: 8080,
      tftpEnabled: true,
      db: store.db,
      machines: machinesFor(store),
      events: { append: () => {} },
      log: silentLogger,
    });
    // Without SO_REUSEADDR this bind fails if anything holds the port.
    const probe = createSocket("udp4");
    await new Promise<void>((resolve, reject) => {
      probe.once("error", reject);
      probe.bind(port, "0.0.0.0", resolve);
    });
    probe.close();
    expect(off.stats()).toMatchObject({ received: 0, replied: 0 });
    await off.close();
  });
});
