/**
 * PostgreSQL down under two `kindling serve` nodes (the e2e rig: a bridge in a network namespace, node A in
 * full DHCP mode on it, node B (HTTP and API only) and a machine each in a namespace of their own on the bridge;
 * one PostgreSQL 15 reached over its unix socket). A machine registered with a profile and leased by a real DHCP
 * client (busybox udhcpc); then PostgreSQL stopped:
 * - node A renews the machine's lease (the same client asking for its address again) and answers `/ipxe` with
 *   its boot script, from its own replica;
 * - API writes on both nodes answer 503 naming the database; `/healthz` says the database is unreachable;
 * PostgreSQL started again: writes work, and the events node A recorded meanwhile are in PostgreSQL and in
 * node B's event list.
 */
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, expect, test } from "vitest";
import { changeNotice, STATE_CHANNEL } from "../../src/store/pg/changes.ts";
import { Kindling } from "../e2e/rig/kindling.ts";
import { Netns } from "../e2e/rig/netns.ts";
import { scenarioDir } from "../e2e/rig/paths.ts";
import { putProfile } from "../e2e/rig/scenario.ts";
import { startPostgres, type TestPostgres } from "../helpers/postgres.ts";

const MAC = "52:54:00:e2:5d:01";
/** Bound on a node noticing PostgreSQL gone or back (its backoff is capped at 1 s here), and on shipping. */
const WAIT_MS = 30_000;

let postgres: TestPostgres;
let url: string;
let ns: Netns;
let dir: string;
let a: Kindling;
let b: Kindling;
let machine: Netns;
let passed = 0;

async function eventually<T>(
  what: string | (() => string),
  probe: () => T | undefined | Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${WAIT_MS} ms waiting for ${typeof what === "string" ? what : what()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** GET from inside `from` (no token, as firmware and load balancers ask). */
function get(from: Netns, target: string): { status: number; body: string } {
  const out = from.exec("curl", ["-sS", "--max-time", "10", "-w", "\n%{http_code}", target]);
  const cut = out.lastIndexOf("\n");
  return { status: Number(out.slice(cut + 1)), body: out.slice(0, cut) };
}

/** busybox udhcpc on the machine's eth0 as a PXE ROM, once (3 DISCOVERs 1 s apart at most); `ip` asks for that address. */
function udhcpc(ip?: string): { ip: string; server: string } {
  const log = join(dir, `udhcpc-${Date.now()}.log`);
  const script = join(dir, "udhcpc.sh");
  writeFileSync(
    script,
    `#!/bin/sh\n[ "$1" = bound ] && { ip addr flush dev "$interface"; ip addr add "$ip/24" dev "$interface"; echo "$ip $serverid" > ${log}; }\nexit 0\n`,
    { mode: 0o755 },
  );
  machine.exec("busybox", [
    "udhcpc",
    "-f",
    "-q",
    "-n",
    "-i",
    "eth0",
    "-s",
    script,
    "-t",
    "3",
    "-T",
    "1",
    // A BIOS PXE ROM's vendor class: a boot client, whose DHCP exchanges are events in its history.
    "-V",
    "PXEClient:Arch:00000:UNDI:002001",
    ...(ip ? ["-r", ip] : []),
  ]);
  const [leased, server] = machine.exec("cat", [log]).trim().split(" ");
  return { ip: leased!, server: server! };
}

const ipxeUrl = (k = a) => `${k.baseUrl}/ipxe?mac=${MAC.replace(/:/g, "-")}&arch=x86_64&platform=pcbios`;

beforeAll(async () => {
  postgres = startPostgres();
  url = postgres.url(await postgres.createDatabase("outage"));
  dir = scenarioDir("pg-outage");
  ns = Netns.create({ subnet: 93 });
  const kernel = join(dir, "vmlinuz");
  writeFileSync(kernel, "not a kernel: /ipxe only names it");
  a = await Kindling.start({ ns, workDir: dir, node: "a", dhcp: "full", database: url, assets: { vmlinuz: kernel } });
  b = await Kindling.start({
    ns: ns.attachHost(2),
    workDir: dir,
    node: "b",
    dhcp: "off",
    database: url,
    assets: { vmlinuz: kernel },
  });
  machine = ns.attachHost(50);
  machine.exec("ip", ["addr", "flush", "dev", "eth0"]);
  machine.exec("ip", ["link", "set", "eth0", "address", MAC]);
}, 120_000);

afterAll(() => {
  a?.stop();
  b?.stop();
  ns?.destroy();
  postgres?.stop();
  // The nodes' logs and configs stay for a failed run (KINDLING_E2E_KEEP=1 keeps a good run's too).
  if (passed === 2 && process.env.KINDLING_E2E_KEEP !== "1") rmSync(dir, { recursive: true, force: true });
  else if (dir) console.error(`pg-outage: node logs and configs kept in ${dir}`);
});

test("PostgreSQL down: node A renews the machine's lease and serves its /ipxe, API writes 503, /healthz unreachable; back: writes work, the outage's events shipped", async () => {
  putProfile(a, "e2e", ["kindling.e2e.report={{ urls.report }}"]);
  a.call("POST", "/machines", { mac: MAC, profile: "e2e" });
  const lease = udhcpc();
  expect(lease.server).toBe(ns.serverIp);
  // Asked from another address than the machine's: the machine's own request during the outage is then rendered
  // afresh (not replayed from the answer cache) and recorded at once (not counted into a coalesced repeat).
  const before = get(ns, ipxeUrl());
  expect(before.status).toBe(200);
  expect(before.body).toMatch(new RegExp(`^kernel ${a.baseUrl}/assets/e2e/vmlinuz .*ignition\\.config\\.url=`, "m"));

  postgres.stopServer();
  const outageFrom = new Date().toISOString();
  let outageTo: string;
  try {
    const health = await eventually("A's /healthz answering 503", () => {
      const h = get(ns, `${a.baseUrl}/healthz`);
      return h.status === 503 ? h : undefined;
    });
    expect(JSON.parse(health.body)).toMatchObject({
      status: "unavailable",
      database: { engine: "postgres", reachable: false },
    });

    // The same client asking for its address again gets it, from the node's memory.
    expect(udhcpc(lease.ip)).toEqual(lease);
    // Its boot script, from A's replica: the same kernel and profile, freshly signed URLs.
    const during = get(machine, ipxeUrl());
    expect(during.status, during.body).toBe(200);
    const kernelLine = (s: string) => s.match(/^kernel \S+/m)?.[0];
    expect(kernelLine(during.body)).toBe(kernelLine(before.body));
    expect(during.body).toContain(`ignition.config.url=${a.baseUrl}/ignition?`);
    // Node B, which serves no DHCP, answers from its replica as well.
    const onB = get(machine, ipxeUrl(b));
    expect(onB.status, onB.body).toBe(200);
    expect(kernelLine(onB.body)).toBe(`kernel ${b.baseUrl}/assets/e2e/vmlinuz`);

    // Writes need the database: a clear 503 on either node, nothing half-written.
    for (const k of [a, b]) {
      const patch = k.api("PATCH", `/machines/${MAC}`, { hostname: "written-during-outage" });
      expect(patch.status, patch.text).toBe(503);
      expect((patch.body as { error: string }).error).toMatch(/database/i);
      const profile = k.api("POST", "/profiles", {
        name: "during-outage",
        boot: { kernel: "/assets/e2e/vmlinuz", initrd: [], args: [] },
      });
      expect(profile.status, profile.text).toBe(503);
      expect((profile.body as { error: string }).error).toMatch(/database/i);
    }
  } finally {
    outageTo = new Date().toISOString();
    postgres.start();
  }

  await bothHealthy();
  expect(a.call("GET", `/machines/${MAC}`)).not.toMatchObject({ hostname: "written-during-outage" });
  expect(a.api("GET", "/profiles/during-outage").status).toBe(404);
  a.call("PATCH", `/machines/${MAC}`, { hostname: "written-after-outage" });
  await eventually("A's write in B's replica", () => {
    const m = b.call("GET", `/machines/${MAC}`) as { hostname: string | null };
    return m.hostname === "written-after-outage" ? m : undefined;
  });

  // What node A recorded while PostgreSQL was down (the renewal, the boot script) reaches PostgreSQL.
  const inOutage = (e: { at: string }) => e.at >= outageFrom && e.at <= outageTo;
  let seen: unknown[] = [];
  const shipped = await eventually(
    () => `the outage's events in PostgreSQL; it holds ${JSON.stringify(seen)}`,
    async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        const r = await c.query<{ node: string; kind: string; at: string }>(
          "SELECT node, kind, at FROM events WHERE mac = $1 ORDER BY id",
          [MAC],
        );
        seen = r.rows;
        const kinds = r.rows.filter((e) => e.node === "a" && inOutage(e)).map((e) => e.kind);
        return kinds.includes("dhcp.ack") && kinds.includes("ipxe.request") ? kinds : undefined;
      } finally {
        await c.end();
      }
    },
  );
  expect(shipped).toContain("ipxe.request");
  // …and so in node B's history of the machine.
  const shownOnB = b.events(MAC).filter((e) => e.node === "a" && inOutage(e));
  expect(shownOnB.map((e) => e.kind)).toEqual(expect.arrayContaining(["dhcp.ack", "ipxe.request"]));
  passed++;
}, 180_000);

test("connections cut while a node refetches a change: the node reconnects, resyncs, and keeps following later writes", async () => {
  const hold = new pg.Client({ connectionString: url });
  const admin = new pg.Client({ connectionString: url });
  await hold.connect();
  await admin.connect();
  try {
    // Every node's refetch of this notice waits behind the lock…
    await hold.query("BEGIN");
    await hold.query("LOCK TABLE machines IN ACCESS EXCLUSIVE MODE");
    await admin.query("SELECT pg_notify($1, $2)", [STATE_CHANNEL, changeNotice("m", MAC)]);
    await eventually("both nodes refetching behind the lock", async () => {
      const r = await admin.query<{ n: string }>(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%FROM machines WHERE mac%'",
      );
      return Number(r.rows[0]!.n) >= 2 ? true : undefined;
    });
    // …and every node's connection (pool and listener) is cut: the refetch fails, the listener reconnects.
    await admin.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
       WHERE datname = current_database() AND backend_type = 'client backend' AND pid NOT IN ($1, pg_backend_pid())`,
      [(hold as unknown as { processID: number }).processID],
    );
    await hold.query("COMMIT");
  } finally {
    await hold.end().catch(() => {});
    await admin.end().catch(() => {});
  }
  await bothHealthy();
  // Past the refetch's retry (1 s), a write on A must still reach B's replica.
  await new Promise((r) => setTimeout(r, 2000));
  a.call("PATCH", `/machines/${MAC}`, { hostname: "written-after-the-cut" });
  await eventually("A's write after the cut in B's replica", () => {
    const m = b.call("GET", `/machines/${MAC}`) as { hostname: string | null };
    return m.hostname === "written-after-the-cut" ? m : undefined;
  });
  passed++;
}, 120_000);

/** Waits until both nodes' /healthz answer 200 again (PostgreSQL back, each pool's probe succeeded). */
async function bothHealthy(): Promise<void> {
  for (const [name, k] of [
    ["A", a],
    ["B", b],
  ] as const)
    await eventually(`${name}'s /healthz answering 200`, () =>
      get(ns, `${k.baseUrl}/healthz`).status === 200 ? true : undefined,
    );
}
