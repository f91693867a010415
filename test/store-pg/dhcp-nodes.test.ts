/**
 * Two `kindling serve` nodes in full DHCP mode on one segment (a bridge in the client's namespace), their
 * leases in one PostgreSQL 15 (the harness's, reached over its unix socket from inside the namespaces):
 * - perfdhcp broadcasts at a rate both nodes share; tcpdump captures every reply; every ACKed address went to
 *   one client only across both nodes' answers, and every ACKed lease is in PostgreSQL;
 * - PostgreSQL stopped: /healthz says 503, known clients are renewed from memory with their addresses, new
 *   clients are refused (one coalesced log line, a counted metric); PostgreSQL started again: the nodes
 *   reconnect, the renewals are written there, new clients are served again;
 * - one node killed with SIGKILL: the other renews every client with the address it had.
 * KINDLING_TWO_NODES_SECONDS sets perfdhcp's run (10 s here; bench/dhcp-two-nodes.sh runs 30 s).
 */
import { type ChildProcess, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { intToIp, ipToInt } from "../../src/dhcp/ip.ts";
import { removeTempDirs, tempDir, until } from "../dhcp/harness.ts";
import type { Answer, LeaseClientResult } from "../dhcp/lease-client.ts";
import { Lab, type Netns } from "../dhcp/netns.ts";
import { healthz, type Served, serve } from "../dhcp/serve.ts";
import { dhcpReplies } from "../helpers/pcap.ts";
import { startPostgres, type TestPostgres } from "../helpers/postgres.ts";

const SECONDS = Number(process.env.KINDLING_TWO_NODES_SECONDS ?? 10);
/** DORA per second perfdhcp asks for: more than a handful, little enough for a shared 2-core machine. */
const RATE = 150;
const A = "10.91.0.1";
const B = "10.91.0.2";
const CLIENT = "10.91.0.250";
const ROOT = resolve(import.meta.dirname, "../..");
const TSX = join(ROOT, "node_modules/.bin/tsx");
const ACK = 5;

let postgres: TestPostgres;
let url: string;
let lab: Lab;
let cli: Netns;
const ns: Record<"a" | "b", Netns> = {} as never;
const node: Record<"a" | "b", Served & { dataDir: string }> = {} as never;
/** Every client perfdhcp got an ACK for, and its address. */
const acked = new Map<string, string>();

/**
 * A quarter more addresses than perfdhcp's clients: the nodes' next-fit cursors (each starting at a random
 * place) run into each other's leases, so the two nodes do offer and REQUEST the same addresses, and only
 * the database keeps them apart.
 */
const RANGE = { start: "10.91.1.0", end: intToIp(ipToInt("10.91.1.0") + Math.ceil(RATE * SECONDS * 1.25) - 1) };
const dhcp = {
  mode: "full",
  subnets: [{ cidr: "10.91.0.0/16", ranges: [RANGE], router: A, leaseSeconds: 3600 }],
};

async function rows(): Promise<Map<string, { mac: string; state: string; expires: number }>> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query<{ ip: string; mac: string; state: string; expires_at: string }>(
      "SELECT ip, mac, state, expires_at FROM leases WHERE subnet = '10.91.0.0/16'",
    );
    return new Map(r.rows.map((x) => [x.ip, { mac: x.mac, state: x.state, expires: Number(x.expires_at) }]));
  } finally {
    await c.end();
  }
}

function leaseClient(scenario: Record<string, unknown>): Promise<LeaseClientResult> {
  const file = join(tempDir("kindling-lease-client-"), "scenario.json");
  writeFileSync(file, JSON.stringify(scenario));
  const child = cli.spawn([TSX, join(ROOT, "test/dhcp/lease-client.ts"), `@${file}`]);
  let out = "";
  let err = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (err += d));
  return new Promise((res, rej) => {
    const t = setTimeout(() => child.kill("SIGKILL"), 240_000);
    child.once("exit", (code) => {
      clearTimeout(t);
      if (code !== 0) rej(new Error(`lease-client exited ${code}: ${err}`));
      else res(JSON.parse(out.trim().split("\n").pop()!) as LeaseClientResult);
    });
  });
}

const sample = (n: number, from = 0) => [...acked].slice(from, from + n).map(([mac, ip]) => ({ mac, ip }));
let extra: Record<string, unknown>;

/** SIGKILL to every process in the node's namespace (the node's tsx and node processes, nothing else). */
async function kill(which: "a" | "b"): Promise<void> {
  for (const pid of spawnSync("ip", ["netns", "pids", ns[which].name], { encoding: "utf8" }).stdout.split(/\s+/))
    if (pid) process.kill(Number(pid), "SIGKILL");
  await until(`node ${which} gone`, () => !node[which].alive() || undefined, 10_000);
}

beforeAll(async () => {
  postgres = startPostgres();
  url = postgres.url(await postgres.createDatabase("two_nodes"));
  lab = new Lab("kpn");
  ns.a = lab.ns("a");
  ns.b = lab.ns("b");
  cli = lab.ns("c");
  cli.ip("link", "add", "br0", "type", "bridge");
  lab.link(ns.a, "k0", `${A}/16`, cli, "pa", undefined);
  lab.link(ns.b, "k0", `${B}/16`, cli, "pb", undefined);
  for (const port of ["pa", "pb"]) cli.ip("link", "set", port, "master", "br0");
  cli.ip("addr", "add", `${CLIENT}/16`, "dev", "br0");
  cli.ip("link", "set", "br0", "up");
  cli.ip("route", "add", "default", "dev", "br0");
  // A short backoff cap, so the nodes find PostgreSQL again within seconds of its restart.
  extra = { database: url, postgres: { poolMax: 4, backoffMaxMs: 1000 }, logLevel: "info" };
  // One after the other: the second waits at the migration lock, then finds nothing to do.
  [node.a, node.b] = await Promise.all([serve(lab, ns.a, A, dhcp, extra), serve(lab, ns.b, B, dhcp, extra)]);
}, 180_000);

afterAll(async () => {
  await lab?.destroy();
  postgres?.stop();
  removeTempDirs();
});

describe("two Kindling nodes on one PostgreSQL", () => {
  it("say which store they use", () => {
    for (const n of [node.a, node.b]) {
      const line = n.output.find((l) => l.includes("PostgreSQL holds the shared state"));
      expect(line).toBeDefined();
      expect(line).toContain('"engine":"postgres"');
    }
  });

  it(`share perfdhcp's clients for ${SECONDS} s: every ACKed address unique, every ACKed lease in PostgreSQL`, async () => {
    const pcap = join(tempDir("kindling-two-nodes-"), "replies.pcap");
    const tcpdump: ChildProcess = lab.adopt(
      cli.spawn(["tcpdump", "-i", "br0", "-n", "-U", "-w", pcap, "udp", "and", "src", "port", "67"]),
    );
    let tcpdumpErr = "";
    tcpdump.stderr!.on("data", (d) => (tcpdumpErr += d));
    await until("tcpdump listening", () => tcpdumpErr.includes("listening on") || undefined, 15_000);
    const n = RATE * SECONDS;
    const r = cli.run(
      [
        "perfdhcp",
        "-4",
        "-l",
        "br0",
        "-r",
        String(RATE),
        "-R",
        String(n),
        "-n",
        String(n),
        "-p",
        String(SECONDS + 5),
        "-b",
        "mac=02:91:00:00:00:00",
        "-W",
        "2000000",
        "all",
      ],
      { allowFail: true, timeoutMs: (SECONDS + 60) * 1000 },
    );
    await new Promise((res) => setTimeout(res, 500));
    const exited = new Promise((res) => tcpdump.once("exit", res));
    tcpdump.kill("SIGINT");
    await exited;
    const replies = dhcpReplies(pcap);
    const acks = replies.filter((p) => p.type === ACK);
    const sentRequests = [...r.stdout.matchAll(/sent packets: (\d+)/g)].map((m) => Number(m[1]));
    console.log(
      `two nodes, ${SECONDS} s at ${RATE}/s: perfdhcp sent ${sentRequests.join("/")} (DISCOVER/REQUEST); ` +
        `ACKs captured: ${acks.length} (node A ${acks.filter((a) => a.from === A).length}, node B ${acks.filter((a) => a.from === B).length}); ` +
        `NAKs: ${replies.filter((p) => p.type === 6).length}`,
    );
    // Both nodes answered a real share: each of them ACKed clients.
    expect(acks.filter((a) => a.from === A).length).toBeGreaterThan(0);
    expect(acks.filter((a) => a.from === B).length).toBeGreaterThan(0);
    // Most of what perfdhcp asked for was leased (a lost race costs a client one NAK, nothing more).
    expect(acks.length).toBeGreaterThan(n * 0.8);
    const holder = new Map<string, string>();
    const twice: string[] = [];
    for (const a of acks) {
      const h = holder.get(a.yiaddr);
      if (h !== undefined && h !== a.mac) twice.push(`${a.yiaddr}: ${h} and ${a.mac}`);
      holder.set(a.yiaddr, a.mac);
      acked.set(a.mac, a.yiaddr);
    }
    expect(twice).toEqual([]);
    // A client ACKed twice (perfdhcp reusing a MAC) kept one address.
    expect(new Set(acked.values()).size).toBe(acked.size);
    const table = await rows();
    const missing = [...holder].filter(([ip, mac]) => table.get(ip)?.mac !== mac || table.get(ip)?.state !== "bound");
    expect(missing).toEqual([]);
  }, 180_000);

  it("two clients REQUEST one address through the two nodes at once, 40 times: one ACK and one NAK each", async () => {
    const taken = new Set(acked.values());
    const free: string[] = [];
    for (let n = ipToInt(RANGE.end); free.length < 40; n--) if (!taken.has(intToIp(n))) free.push(intToIp(n));
    const hex = (i: number) => i.toString(16).padStart(2, "0");
    // Interleaved, so that both REQUESTs of an address leave together.
    const requests = free.flatMap((ip, i) => [
      { mac: `02:91:aa:00:${hex(i)}:01`, ip, server: A },
      { mac: `02:91:bb:00:${hex(i)}:02`, ip, server: B },
    ]);
    const r = await leaseClient({ op: "request", requests, concurrency: requests.length });
    expect(r.silent).toEqual([]);
    const table = await rows();
    for (const ip of free) {
      const answers = r.answers.filter((a) => requests.find((q) => q.mac === a.mac)!.ip === ip);
      const acks = answers.filter((a) => a.type === "ACK");
      expect(acks).toHaveLength(1);
      expect(answers.filter((a) => a.type === "NAK")).toHaveLength(1);
      expect(table.get(ip)).toMatchObject({ mac: acks[0]!.mac, state: "bound" });
    }
    // The database decided: winners on both nodes.
    const winners = r.answers.filter((a) => a.type === "ACK");
    console.log(
      `races: node A won ${winners.filter((a) => a.server === A).length}, node B ${winners.filter((a) => a.server === B).length}`,
    );
  }, 120_000);

  it("without PostgreSQL: 503, known clients renewed from memory, new ones refused; then reconnects and writes the renewals", async () => {
    const known = sample(40);
    const before = await rows();
    postgres.stopServer();
    try {
      await until("node B reports the database unreachable", () => healthz(ns.b, B).ok === false || undefined, 20_000);
      const renewed = await leaseClient({ op: "renew", leases: known, to: "255.255.255.255", concurrency: 8 });
      const byMac = new Map(renewed.answers.map((a) => [a.mac, a]));
      // Both nodes know every client (their views follow each other's writes): each answers with its address.
      for (const { mac, ip } of known) expect(byMac.get(mac)).toMatchObject({ type: "ACK", ip });
      const fresh = await leaseClient({ op: "dora", macs: ["02:91:ee:00:00:01", "02:91:ee:00:00:02"], timeoutMs: 500 });
      expect(fresh.answers.filter((a) => a.type === "ACK")).toEqual([]);
      expect(fresh.silent.length).toBe(2);
      for (const n of [node.a, node.b])
        expect(n.metric('kindling_dhcp_requests_total{outcome="refused"}')).toBeGreaterThan(0);
      // Many refusals, one log line per node for the window.
      for (const n of [node.a, node.b])
        expect(n.output.filter((l) => l.includes("lease database unreachable")).length).toBe(1);
    } finally {
      postgres.start();
    }
    await until(
      "both nodes report the database reachable",
      () => (healthz(ns.a, A).ok && healthz(ns.b, B).ok) || undefined,
      30_000,
    );
    await until(
      "renewals written",
      () =>
        (node.a.metric("kindling_dhcp_replay_waiting") === 0 && node.b.metric("kindling_dhcp_replay_waiting") === 0) ||
        undefined,
      30_000,
    );
    const after = await rows();
    // Each renewal acknowledged without the database is in it now, later than before the outage.
    for (const { mac, ip } of known) {
      expect(after.get(ip)).toMatchObject({ mac, state: "bound" });
      expect(after.get(ip)!.expires).toBeGreaterThan(before.get(ip)!.expires);
    }
    const fresh = await leaseClient({ op: "dora", macs: ["02:91:ee:00:00:03"] });
    expect(fresh.answers).toMatchObject([{ type: "ACK" }]);
  }, 180_000);

  it("renewals a node acknowledged without PostgreSQL and then crashed with are written when it starts again", async () => {
    const known = sample(20, 40);
    const before = await rows();
    postgres.stopServer();
    try {
      await until("node B reports the database unreachable", () => healthz(ns.b, B).ok === false || undefined, 20_000);
      // Unicast to node B: only it hears them.
      const renewed = await leaseClient({ op: "renew", leases: known, to: B, concurrency: 8 });
      for (const { mac, ip } of known)
        expect(renewed.answers.find((a) => a.mac === mac)).toMatchObject({ type: "ACK", ip, server: B });
      await kill("b");
    } finally {
      postgres.start();
    }
    await until("node A reports the database reachable", () => healthz(ns.a, A).ok || undefined, 30_000);
    // Node A never saw them: their only record is node B's journal.
    const meanwhile = await rows();
    for (const { ip } of known) expect(meanwhile.get(ip)!.expires).toBe(before.get(ip)!.expires);
    node.b = await serve(lab, ns.b, B, dhcp, { ...extra, dataDir: node.b.dataDir });
    await until("node B's journal written", () => node.b.metric("kindling_dhcp_replay_waiting") === 0 || undefined);
    const after = await rows();
    for (const { mac, ip } of known) {
      expect(after.get(ip)).toMatchObject({ mac, state: "bound" });
      expect(after.get(ip)!.expires).toBeGreaterThan(before.get(ip)!.expires);
    }
  }, 180_000);

  it("node A killed with SIGKILL: node B renews every client with the address it had", async () => {
    await kill("a");
    const all = sample(acked.size);
    const r = await leaseClient({ op: "renew", leases: all, to: "255.255.255.255", concurrency: 32 });
    const wrong = all.filter(
      ({ mac, ip }) =>
        !r.answers.some((a: Answer) => a.mac === mac && a.type === "ACK" && a.ip === ip && a.server === B),
    );
    console.log(
      `after SIGKILL of node A: ${r.answers.length} answers for ${all.length} clients, ${r.silent.length} silent`,
    );
    expect(wrong).toEqual([]);
  }, 300_000);
});
