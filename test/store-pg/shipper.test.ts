/**
 * Boot-path writes on nodes sharing one PostgreSQL 15 (the harness's): each node commits events and sightings
 * to its own SQLite file, and its shipper (src/store/pg/shipper.ts) sends them on. Two nodes are two stores
 * on two files with two pools, as two processes would have.
 */
import { Writable } from "node:stream";
import pg from "pg";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Store } from "../../src/store/index.ts";
import { DatabaseUnavailableError, PgDatabase } from "../../src/store/pg/database.ts";
import { PgEventLog } from "../../src/store/pg/events.ts";
import { migratePg } from "../../src/store/pg/migrate.ts";
import { moveEventsCursor } from "../../src/store/pg/ship-events.ts";
import { startShipper } from "../../src/store/pg/shipper.ts";
import { tempDir } from "../helpers/kindling.ts";
import { startPostgres, type TestPostgres } from "../helpers/postgres.ts";

let pgs: TestPostgres;
let url: string;
const cleanup: (() => Promise<void> | void)[] = [];

beforeAll(() => {
  pgs = startPostgres();
});
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});
afterAll(() => pgs?.stop());

/** A fresh database at the newest schema, and a client on it for the test's own reads. */
async function database(): Promise<pg.Client> {
  url = pgs.url(await pgs.createDatabase("ship"));
  const admin = new PgDatabase({ url });
  await migratePg(admin);
  await admin.close();
  const client = new pg.Client({ connectionString: url });
  // A test that stops the server cuts this connection too.
  client.on("error", () => {});
  await client.connect();
  cleanup.push(() => client.end().catch(() => {}));
  return client;
}

function logLines() {
  const lines: { level: number; msg: string }[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split("\n").filter(Boolean)) lines.push(JSON.parse(l));
      done();
    },
  });
  return { lines, log: pino({ level: "info" }, sink) };
}

/** A node: its own file and pool, sightings marked for shipping, events read from PostgreSQL. */
function node(name: string, opts: { maxDiscovered?: number; intervalMs?: number; batch?: number } = {}) {
  const { lines, log } = logLines();
  const store = Store.open(tempDir(), { node: name, maxDiscovered: opts.maxDiscovered ?? 10_000 });
  store.history.shipSightings();
  const pool = new PgDatabase({ url, backoffMinMs: 50, backoffMaxMs: 200 }, log);
  const shipper = startShipper({
    sqlite: store.db,
    pg: pool,
    node: name,
    maxDiscovered: opts.maxDiscovered ?? 10_000,
    log,
    // The tests ship with flush() unless they test the timer.
    intervalMs: opts.intervalMs ?? 3_600_000,
    batch: opts.batch,
  });
  store.events.share(new PgEventLog(pool, () => shipper.flush()));
  cleanup.push(async () => {
    await shipper.stop();
    await pool.close();
    store.close();
  });
  return { store, pool, shipper, lines };
}

async function until(what: string, ok: () => Promise<boolean> | boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Until a shipment waits for the shipping turn (which the test holds). */
const waitingForTurn = () =>
  until("a shipment to wait for its turn", async () => {
    const probe = new pg.Client({ connectionString: url });
    await probe.connect();
    try {
      const { rows } = await probe.query(
        "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%kindling.ship%'",
      );
      return rows.length > 0;
    } finally {
      await probe.end();
    }
  });

type Shipped = { node: string; origin_id: string; kind: string; mac: string | null; detail: string };
const shipped = async (c: pg.Client) =>
  (await c.query<Shipped>("SELECT node, origin_id, kind, mac, detail FROM events ORDER BY id")).rows;

describe("events", () => {
  it("two nodes' events arrive in PostgreSQL once each, with their node and their local id", async () => {
    const c = await database();
    const a = node("node-a");
    const b = node("node-b");
    for (let i = 0; i < 30; i++)
      a.store.history.append({ mac: "52:54:00:aa:00:01", kind: "ipxe.request", detail: { i } });
    for (let i = 0; i < 20; i++) b.store.history.append({ kind: "tftp.transfer", detail: { i } });
    await Promise.all([a.store.history.committed(), b.store.history.committed()]);
    // Both at once, and each twice: the shipping turn and the cursor keep every event to one row.
    await Promise.all([a.shipper.flush(), b.shipper.flush(), a.shipper.flush(), b.shipper.flush()]);
    const rows = await shipped(c);
    expect(rows).toHaveLength(50);
    const local = (s: Store) =>
      (s.db.prepare("SELECT id, kind, detail FROM events ORDER BY id").all() as { id: number; kind: string }[]).map(
        (e) => ({ origin_id: String(e.id), kind: e.kind }),
      );
    const of = (n: string) => rows.filter((r) => r.node === n).map((r) => ({ origin_id: r.origin_id, kind: r.kind }));
    expect(of("node-a")).toEqual(local(a.store));
    expect(of("node-b")).toEqual(local(b.store));
    expect(rows.filter((r) => r.node === "node-a").map((r) => JSON.parse(r.detail).i)).toEqual([...Array(30).keys()]);
    expect(a.shipper.backlog()).toEqual({ events: 0, sightings: 0 });
    // The local log names its node too (as on a node without PostgreSQL).
    expect(a.store.db.prepare("SELECT DISTINCT node FROM events").all()).toEqual([{ node: "node-a" }]);
  });

  it("a shipment sent again after PostgreSQL committed it (crash before the cursor moved) adds nothing", async () => {
    const c = await database();
    const a = node("node-a");
    for (let i = 0; i < 12; i++) a.store.events.append({ kind: "k", detail: { i } });
    await a.shipper.flush();
    // The state a crash between PostgreSQL's commit and the file's leaves: the cursor where it was.
    moveEventsCursor(a.store.db, 4);
    a.store.events.append({ kind: "after", detail: {} });
    expect(a.shipper.backlog().events).toBe(9);
    await a.shipper.flush();
    const rows = await shipped(c);
    expect(rows.map((r) => Number(r.origin_id))).toEqual([...Array(13).keys()].map((i) => i + 1));
    expect(a.shipper.backlog().events).toBe(0);
  });

  it("PostgreSQL stopped mid-shipment and started again: every event once, nothing lost, one log line per outage", async () => {
    const c = await database();
    const a = node("node-a", { intervalMs: 50, batch: 7 });
    for (let i = 0; i < 10; i++) a.store.events.append({ kind: "before", detail: { i } });
    await a.shipper.flush();
    expect(await shipped(c)).toHaveLength(10);

    // A shipment waiting for its turn (a test client holds it) when the server goes away: it never commits.
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    holder.on("error", () => {});
    await holder.query("BEGIN");
    await holder.query("SELECT pg_advisory_xact_lock(hashtext('kindling.ship'))");
    for (let i = 0; i < 25; i++) a.store.events.append({ kind: "during", detail: { i } });
    a.store.history.recordSighting({ mac: "52:54:00:aa:00:09", hostname: "n9" });
    const inFlight = a.shipper.flush();
    await waitingForTurn();
    pgs.stopServer();
    await expect(inFlight).rejects.toBeInstanceOf(DatabaseUnavailableError);
    void holder.end().catch(() => {});
    // Recorded while PostgreSQL is away: into the file, as ever.
    for (let i = 0; i < 5; i++) a.store.events.append({ kind: "outage", detail: { i } });
    await expect(a.shipper.flush()).rejects.toBeInstanceOf(DatabaseUnavailableError);
    expect(a.shipper.backlog()).toEqual({ events: 30, sightings: 1 });
    // The log says it is unavailable; a machine's story falls back to what this node's file holds.
    await expect(a.store.events.list({ kind: "outage" })).rejects.toBeInstanceOf(DatabaseUnavailableError);
    const own = await a.store.events.listOrLocal({ kind: "outage" });
    expect(own.map((e) => [e.node, e.detail.i])).toEqual([4, 3, 2, 1, 0].map((i) => ["node-a", i]));
    // The timer keeps trying (every 50 ms) meanwhile.
    await pause(600);
    pgs.start();

    await until("the backlog to drain", () => a.pool.available && a.shipper.backlog().events === 0, 30_000);
    const after = new pg.Client({ connectionString: url });
    await after.connect();
    cleanup.push(() => after.end());
    const rows = await shipped(after);
    expect(rows.map((r) => Number(r.origin_id))).toEqual([...Array(40).keys()].map((i) => i + 1));
    expect(rows.map((r) => r.kind)).toEqual([
      ...Array(10).fill("before"),
      ...Array(25).fill("during"),
      ...Array(5).fill("outage"),
    ]);
    expect((await after.query("SELECT hostname FROM machines WHERE mac = '52:54:00:aa:00:09'")).rows).toEqual([
      { hostname: "n9" },
    ]);
    await until("the sighting's pending row to go", () => a.shipper.backlog().sightings === 0);
    const shipLines = a.lines.filter((l) => l.msg.startsWith("ship:"));
    expect(shipLines.map((l) => l.msg)).toEqual([
      "ship: PostgreSQL unreachable; events and sightings wait in this node's file until it answers",
      "ship: shipping to PostgreSQL again",
    ]);
  });

  it("reads every node's events from PostgreSQL with the file's query semantics, newest first", async () => {
    await database();
    const a = node("node-a");
    const b = node("node-b");
    const M1 = "52:54:00:aa:01:01";
    const M2 = "52:54:00:aa:01:02";
    // Alone first: what the file answers is what PostgreSQL must answer once shipped.
    const solo = Store.open(tempDir(), { node: "node-a" });
    cleanup.push(() => solo.close());
    for (let i = 0; i < 40; i++) {
      const e = { mac: i % 3 === 0 ? M1 : i % 3 === 1 ? M2 : null, kind: i % 2 ? "odd" : "even", detail: { i } };
      a.store.events.append(e);
      solo.events.append(e);
    }
    const strip = (es: { kind: string; mac: string | null; detail: unknown; node: string | null }[]) =>
      es.map(({ kind, mac, detail, node }) => ({ kind, mac, detail, node }));
    // A read ships the reader's own events first.
    expect((await a.store.events.list({ mac: M1, limit: 1 }))[0]?.detail).toEqual({ i: 39 });
    // Node A reads B's event once B shipped it.
    b.store.events.append({ mac: M1, kind: "odd", detail: { from: "b" } });
    await b.shipper.flush();
    const newest = (await a.store.events.list({ mac: M1, limit: 1 }))[0]!;
    expect(newest).toMatchObject({ node: "node-b", detail: { from: "b" } });

    for (const q of [
      {},
      { mac: M1 },
      { kind: "odd" },
      { mac: M2, kind: "even" },
      { limit: 5 },
      { mac: M1, limit: 3 },
    ]) {
      const fromFile = strip(await solo.events.list(q));
      // B's event is the newest in PostgreSQL: one more, without it, is what A alone recorded.
      const limit = (q as { limit?: number }).limit ?? 100;
      const fromPg = strip(await a.store.events.list({ ...q, limit: limit + 1 }))
        .filter((e) => e.node === "node-a")
        .slice(0, limit);
      expect(fromPg).toEqual(fromFile);
    }
    // Pages by PostgreSQL's ids: before walks back, after polls forward; together they are the whole log.
    const all = await a.store.events.list({ limit: 1000 });
    expect(all).toHaveLength(41);
    expect(all.map((e) => e.id)).toEqual([...all.map((e) => e.id)].sort((x, y) => y - x));
    const page1 = await a.store.events.list({ limit: 10 });
    const page2 = await a.store.events.list({ limit: 10, before: page1.at(-1)!.id });
    expect([...page1, ...page2]).toEqual(all.slice(0, 20));
    const since = await a.store.events.list({ after: all[5]!.id });
    expect(since).toEqual(all.slice(0, 5));
  });

  it("retention prunes every node's old events in PostgreSQL and the shipped ones from the file", async () => {
    const c = await database();
    const a = node("node-a");
    const b = node("node-b");
    a.store.events.append({ kind: "old" });
    b.store.events.append({ kind: "old" });
    b.store.events.append({ kind: "new" });
    await Promise.all([a.shipper.flush(), b.shipper.flush()]);
    await c.query("UPDATE events SET at = $1 WHERE kind = 'old'", [
      new Date(Date.now() - 91 * 86_400_000).toISOString(),
    ]);
    // Not shipped yet (prune does not ship): the file keeps it until PostgreSQL has it.
    const unshipped = a.store.events.append({ kind: "waiting" });
    expect(a.store.db.prepare("SELECT count(*) n FROM events").get()).toEqual({ n: 2 });
    expect(await a.store.events.prune(90)).toBe(2);
    expect((await shipped(c)).map((r) => r.kind)).toEqual(["new"]);
    expect(a.store.db.prepare("SELECT id FROM events").all()).toEqual([{ id: unshipped.id }]);
    // Any node may run it; the second finds nothing.
    expect(await b.store.events.prune(90)).toBe(0);
  });
});

/** Every notice on the state channel, in order. */
async function listen(): Promise<string[]> {
  const l = new pg.Client({ connectionString: url });
  l.on("error", () => {});
  await l.connect();
  const got: string[] = [];
  l.on("notification", (n) => got.push(n.payload ?? ""));
  await l.query("LISTEN kindling_state");
  cleanup.push(() => l.end().catch(() => {}));
  return got;
}

/** The notices sent since `from`: a marker sent last arrives after all of them. */
async function noticesSince(c: pg.Client, got: string[], from: number): Promise<string[]> {
  const marker = `marker ${from} ${Math.random()}`;
  await c.query("SELECT pg_notify('kindling_state', $1)", [marker]);
  await until("the marker notice", () => got.includes(marker));
  return got.slice(from, got.indexOf(marker));
}

const row = async (c: pg.Client, mac: string) =>
  (
    await c.query(
      "SELECT uuid, serial, hostname, arch, state, profile, first_seen, last_seen, untouched FROM machines WHERE mac = $1",
      [mac],
    )
  ).rows[0];

describe("sightings", () => {
  const UUID = "4c4c4544-0042-3010-8052-b4c04f4e4d32";

  it("two nodes' sightings merge: identity learned, what an operator set kept, the newest last_seen", async () => {
    const c = await database();
    const got = await listen();
    const a = node("node-a");
    const b = node("node-b");
    const M = "52:54:00:bb:00:01";
    // An operator registered it in PostgreSQL, with its hostname and profile.
    const typed = "2030-01-01T00:00:00.000Z";
    await c.query(
      `INSERT INTO machines (mac, hostname, state, profile, created_at, updated_at, state_changed_at, untouched)
       VALUES ($1, 'db-7', 'ready', 'web', $2, $2, $2, 0)`,
      [M, typed],
    );
    // A sees it first (DHCP: uuid and arch, and a hostname of its own); B later (iPXE: a serial).
    const seenA = a.store.history.recordSighting({ mac: M, uuid: UUID, arch: "amd64", hostname: "from-dhcp" });
    await pause(5);
    const seenB = b.store.history.recordSighting({ mac: M, serial: "SN-1" });
    expect(a.shipper.backlog().sightings).toBe(1);
    // B's newer sighting arrives first; A's older one must not move last_seen back.
    await b.shipper.flush();
    await a.shipper.flush();
    expect(await row(c, M)).toEqual({
      uuid: UUID,
      serial: "SN-1",
      hostname: "db-7",
      arch: "amd64",
      state: "ready",
      profile: "web",
      first_seen: seenA.machine.firstSeen,
      last_seen: seenB.machine.lastSeen,
      untouched: 0,
    });
    expect(await noticesSince(c, got, 0)).toEqual([`m:${M}`, `m:${M}`]);
    expect(a.shipper.backlog()).toEqual({ events: 0, sightings: 0 });

    // Seen again, nothing new: last_seen moves in PostgreSQL, and nobody is told.
    await pause(5);
    const touched = a.store.history.touched(M);
    await a.store.history.committed();
    const before = got.length;
    await a.shipper.flush();
    expect((await row(c, M)).last_seen).toBe(touched);
    expect(await noticesSince(c, got, before)).toEqual([]);

    // A MAC PostgreSQL does not know: a discovered machine nobody touched; a NUL (PostgreSQL text has none) dropped.
    const N = "52:54:00:bb:00:02";
    b.store.history.recordSighting({ mac: N, hostname: "new-one", serial: "ab\0c" });
    const from = got.length;
    await b.shipper.flush();
    expect(await row(c, N)).toMatchObject({ state: "discovered", untouched: 1, hostname: "new-one", serial: "abc" });
    expect(await noticesSince(c, got, from)).toEqual([`m:${N}`]);
  });

  it("a machine seen while its earlier sighting is being shipped stays pending", async () => {
    const c = await database();
    const a = node("node-a");
    const M = "52:54:00:bb:01:01";
    // Hold the shipping turn so the shipment waits after reading its batch.
    const holder = new pg.Client({ connectionString: url });
    holder.on("error", () => {});
    await holder.connect();
    await holder.query("BEGIN");
    await holder.query("SELECT pg_advisory_xact_lock(hashtext('kindling.ship'))");
    a.store.history.recordSighting({ mac: M });
    const first = a.shipper.flush();
    await waitingForTurn();
    const later = a.store.history.touched(M);
    await a.store.history.committed();
    await holder.query("COMMIT");
    await holder.end();
    await first;
    expect(a.shipper.backlog().sightings).toBe(1);
    await a.shipper.flush();
    expect((await row(c, M)).last_seen).toBe(later);
    expect(a.shipper.backlog().sightings).toBe(0);
  });

  it("holds boot.maxDiscovered in PostgreSQL: the least recently seen untouched machines go, with their events", async () => {
    const c = await database();
    const got = await listen();
    const a = node("node-a", { maxDiscovered: 5 });
    const b = node("node-b", { maxDiscovered: 5 });
    const OP = "52:54:00:cc:00:ff";
    await c.query(
      `INSERT INTO machines (mac, state, created_at, updated_at, state_changed_at, untouched, last_seen)
       VALUES ($1, 'discovered', $2, $2, $2, 0, $2)`,
      [OP, "2000-01-01T00:00:00.000Z"],
    );
    const mac = (n: string, i: number) => `52:54:00:cc:${n}:0${i}`;
    for (const [n, s] of [
      ["0a", a],
      ["0b", b],
    ] as const) {
      for (let i = 1; i <= 4; i++) {
        s.store.history.recordSighting({ mac: mac(n, i) });
        s.store.events.append({ mac: mac(n, i), kind: "machine.discovered" });
        await pause(3);
      }
    }
    // Each node alone stays under its cap; together they are 8 untouched machines.
    await a.shipper.flush();
    await noticesSince(c, got, 0);
    const from = got.length;
    await b.shipper.flush();
    const untouched = await c.query<{ mac: string }>("SELECT mac FROM machines WHERE untouched = 1 ORDER BY mac");
    expect(untouched.rows.map((r) => r.mac)).toEqual([mac("0a", 4), ...[1, 2, 3, 4].map((i) => mac("0b", i))]);
    expect(await row(c, OP)).toBeDefined();
    const events = await c.query<{ mac: string }>("SELECT DISTINCT mac FROM events ORDER BY mac");
    expect(events.rows.map((r) => r.mac)).toEqual([mac("0a", 4), ...[1, 2, 3, 4].map((i) => mac("0b", i))]);
    expect((await noticesSince(c, got, from)).sort()).toEqual(
      [...[1, 2, 3, 4].map((i) => mac("0b", i)), ...[1, 2, 3].map((i) => mac("0a", i))].map((m) => `m:${m}`).sort(),
    );
  });
});
