/**
 * The lease repository contract, run against both engines (a real SQLite file, a real PostgreSQL 15), then
 * what only PostgreSQL is for: several nodes, each with its own connection pool, sharing one database.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDb } from "../../src/store/db.ts";
import type { Lease, LeaseRepository } from "../../src/store/lease-repository.ts";
import { PgDatabase } from "../../src/store/pg/database.ts";
import { PgLeaseRepository } from "../../src/store/pg/leases.ts";
import { migratePg } from "../../src/store/pg/migrate.ts";
import { SqliteLeaseRepository } from "../../src/store/sqlite-lease-repository.ts";
import { tempDir } from "../helpers/kindling.ts";
import { startPostgres, type TestPostgres } from "../helpers/postgres.ts";
import { runNodeScript } from "./node-script.ts";

const SUBNET = "10.9.0.0/24";
const T0 = 1_800_000_000_000;
const HOUR = 3_600_000;
/** Advisory lock key the node processes wait at before they start. */
const START_LOCK = "4242";
const mac = (i: number) =>
  `02:00:00:00:${(i >> 8).toString(16).padStart(2, "0")}:${(i & 255).toString(16).padStart(2, "0")}`;
const ip = (i: number) => `10.9.0.${i}`;

/** Runs test/store-pg/lease-node.ts as its own process; resolves with its [mac, ip | null] answers. */
function runNode(args: string[]): Promise<[string, string | null][]> {
  return runNodeScript("lease-node.ts", args);
}

let pgs: TestPostgres;
const cleanups: (() => Promise<void> | void)[] = [];

beforeAll(() => {
  pgs = startPostgres();
});
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  pgs?.stop();
});

interface Engine {
  repo: LeaseRepository;
  /** What another connection to the same database reads: proves a write is committed, not just cached. */
  committed(ip: string): Promise<Pick<Lease, "mac" | "state"> | undefined>;
  /** Adds a static reservation (machines.ip). */
  reserve(mac: string, ip: string): Promise<void>;
}

async function sqliteEngine(): Promise<Engine> {
  const dir = tempDir();
  const file = join(dir, "kindling.db");
  const db = openDb(file);
  const repo = new SqliteLeaseRepository(db);
  const reader = new Database(file, { readonly: true });
  cleanups.push(async () => {
    await repo.close();
    reader.close();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    repo,
    async committed(ip) {
      return reader.prepare("SELECT mac, state FROM leases WHERE ip = ?").get(ip) as Lease | undefined;
    },
    async reserve(m, a) {
      db.prepare(
        "INSERT INTO machines (mac, state, ip, created_at, updated_at) VALUES (?, 'ready', ?, 'now', 'now')",
      ).run(m, a);
    },
  };
}

/** A "node": its own pool on the shared database. */
function pgNode(database: string, poolMax = 4): { db: PgDatabase; repo: PgLeaseRepository } {
  const db = new PgDatabase({ url: pgs.url(database), poolMax });
  cleanups.push(() => db.close());
  return { db, repo: new PgLeaseRepository(db) };
}

async function pgDatabase(prefix: string): Promise<string> {
  const name = await pgs.createDatabase(prefix);
  const { db } = pgNode(name, 1);
  await migratePg(db);
  return name;
}

async function pgEngine(): Promise<Engine> {
  const name = await pgDatabase("contract");
  const node = pgNode(name);
  const reader = pgNode(name, 1).db;
  return {
    repo: node.repo,
    async committed(a) {
      const { rows } = await reader.query<Lease>("SELECT mac, state FROM leases WHERE subnet = $1 AND ip = $2", [
        SUBNET,
        a,
      ]);
      return rows[0];
    },
    async reserve(m, a) {
      await reader.query(
        "INSERT INTO machines (mac, state, ip, created_at, updated_at) VALUES ($1, 'ready', $2, 'now', 'now')",
        [m, a],
      );
    },
  };
}

const bindReq = (m: string, a: string, now = T0, leaseMs = HOUR) => ({
  subnet: SUBNET,
  ip: a,
  mac: m,
  leaseMs,
  hostname: null,
  now,
});
const decl = (m: string, a: string, now = T0, maxQuarantined = 10) => ({
  subnet: SUBNET,
  ip: a,
  mac: m,
  quarantineMs: HOUR,
  maxQuarantined,
  now,
});

describe.each([
  ["SQLite", sqliteEngine],
  ["PostgreSQL", pgEngine],
])("lease repository on %s", (_name, make) => {
  it("binds a free address once committed; another client cannot take it, its holder renews it", async () => {
    const e = await make();
    const pending = e.repo.bind(bindReq(mac(1), ip(10)));
    const r = await pending;
    expect(r).toMatchObject({ ok: true, lease: { ip: ip(10), mac: mac(1), state: "bound", expiresAt: T0 + HOUR } });
    expect(await e.committed(ip(10))).toEqual({ mac: mac(1), state: "bound" });

    const other = await e.repo.bind(bindReq(mac(2), ip(10), T0 + 1000));
    expect(other).toEqual({ ok: false, holder: expect.objectContaining({ mac: mac(1), state: "bound" }) });

    const renewed = await e.repo.bind(bindReq(mac(1), ip(10), T0 + 60_000));
    expect(renewed).toMatchObject({ ok: true, lease: { expiresAt: T0 + 60_000 + HOUR } });
  });

  it("an expired or released address goes to the next client; only the holder can release", async () => {
    const e = await make();
    await e.repo.bind(bindReq(mac(1), ip(20), T0, 1000));
    expect((await e.repo.bind(bindReq(mac(2), ip(20), T0 + 999))).ok).toBe(false);
    expect((await e.repo.bind(bindReq(mac(2), ip(20), T0 + 1000))).ok).toBe(true);

    await e.repo.bind(bindReq(mac(3), ip(21)));
    expect(await e.repo.release(SUBNET, mac(4), ip(21), T0 + 5)).toBe(false);
    expect(await e.repo.release(SUBNET, mac(3), ip(21), T0 + 5)).toBe(true);
    expect(await e.committed(ip(21))).toEqual({ mac: mac(3), state: "released" });
    expect(await e.repo.release(SUBNET, mac(3), ip(21), T0 + 6)).toBe(false);
    expect((await e.repo.bind(bindReq(mac(4), ip(21), T0 + 10))).ok).toBe(true);
  });

  it("a decline quarantines the address against everyone, the decliner included, until it ends", async () => {
    const e = await make();
    await e.repo.bind(bindReq(mac(1), ip(30)));
    // A stranger cannot quarantine someone else's address.
    expect(await e.repo.decline(decl(mac(9), ip(30)))).toMatchObject({ ok: false, holder: { mac: mac(1) } });
    const d = await e.repo.decline(decl(mac(1), ip(30), T0 + 1));
    expect(d).toMatchObject({ ok: true, lease: { state: "declined", expiresAt: T0 + 1 + HOUR }, released: [] });
    expect(await e.committed(ip(30))).toEqual({ mac: mac(1), state: "declined" });
    expect((await e.repo.bind(bindReq(mac(2), ip(30), T0 + 2))).ok).toBe(false);
    expect((await e.repo.bind(bindReq(mac(1), ip(30), T0 + 2))).ok).toBe(false);
    expect((await e.repo.bind(bindReq(mac(2), ip(30), T0 + 1 + HOUR))).ok).toBe(true);
  });

  it("past maxQuarantined the oldest quarantine ends early and is named", async () => {
    const e = await make();
    for (const [i, a] of [40, 41, 42].entries()) {
      const r = await e.repo.decline(decl(mac(i), ip(a), T0 + i, 2));
      expect(r).toMatchObject({ ok: true, released: i < 2 ? [] : [ip(40)] });
    }
    expect(await e.committed(ip(40))).toEqual({ mac: "", state: "released" });
    expect((await e.repo.bind(bindReq(mac(7), ip(40), T0 + 10))).ok).toBe(true);
    expect((await e.repo.bind(bindReq(mac(7), ip(41), T0 + 10))).ok).toBe(false);
  });

  it("allocate takes the first candidate nobody holds; when none is left it names their holders", async () => {
    const e = await make();
    await e.repo.bind(bindReq(mac(1), ip(50)));
    await e.repo.decline(decl(mac(2), ip(51)));
    const r = await e.repo.allocate({ ...bindReq(mac(3), ""), candidates: [ip(50), ip(51), ip(52), ip(53)] });
    expect(r.ok && r.lease.ip).toBe(ip(52));
    expect(await e.committed(ip(52))).toEqual({ mac: mac(3), state: "bound" });
    const none = await e.repo.allocate({ ...bindReq(mac(4), ""), candidates: [ip(50), ip(51), ip(52)] });
    expect(none.ok).toBe(false);
    expect(!none.ok && none.taken.map((l) => `${l.ip}=${l.mac}/${l.state}`).sort()).toEqual([
      `${ip(50)}=${mac(1)}/bound`,
      `${ip(51)}=${mac(2)}/declined`,
      `${ip(52)}=${mac(3)}/bound`,
    ]);
  });

  it("reclaim deletes only leases that ended more than the grace ago", async () => {
    const e = await make();
    await e.repo.bind(bindReq(mac(1), ip(60), T0, 1000)); // ends T0+1000
    await e.repo.bind(bindReq(mac(2), ip(61), T0, HOUR)); // live
    await e.repo.bind(bindReq(mac(3), ip(62), T0));
    await e.repo.release(SUBNET, mac(3), ip(62), T0 + 5000); // ends T0+5000
    expect(await e.repo.reclaim(T0 + 4000, 2000, 100)).toBe(1);
    expect(await e.committed(ip(60))).toBeUndefined();
    expect(await e.repo.reclaim(T0 + 7000, 2000, 100)).toBe(1);
    expect(await e.committed(ip(62))).toBeUndefined();
    expect(await e.committed(ip(61))).toEqual({ mac: mac(2), state: "bound" });
    expect((await e.repo.all()).map((l) => l.ip)).toEqual([ip(61)]);
  });

  it("reads reservations and the address a MAC holds", async () => {
    const e = await make();
    await e.reserve(mac(5), ip(70));
    expect((await e.repo.reservations()).get(ip(70))).toBe(mac(5));
    const now = Date.now();
    await e.repo.bind(bindReq(mac(5), ip(70), now));
    expect(await e.repo.boundIp(mac(5), now + 1)).toBe(ip(70));
    expect(await e.repo.boundIp(mac(5), now + HOUR)).toBeUndefined();
    expect(await e.repo.boundIp(mac(6), now)).toBeUndefined();
  });

  it("a hostname with NUL bytes (anyone can send one) is stored without them, by bind and by allocate", async () => {
    const e = await make();
    expect((await e.repo.bind({ ...bindReq(mac(8), ip(80)), hostname: "a\0b" })).ok).toBe(true);
    const r = await e.repo.allocate({ ...bindReq(mac(9), ""), hostname: "\0c\0", candidates: [ip(81)] });
    expect(r.ok).toBe(true);
    expect((await e.repo.get(SUBNET, ip(80)))?.hostname?.replaceAll("\0", "")).toBe("ab");
    expect((await e.repo.get(SUBNET, ip(81)))?.hostname?.replaceAll("\0", "")).toBe("c");
  });
});

describe("SQLite group commit", () => {
  it("a burst of binds shares commits, and each resolves only once its lease is in the file", async () => {
    const e = await sqliteEngine();
    const binds = Array.from({ length: 200 }, (_, i) =>
      e.repo.bind(bindReq(mac(i), `10.9.${1 + (i >> 8)}.${i & 255}`)),
    );
    // Full batches (MAX_BATCH) commit at once; the rest waits for the commit delay, and so do their promises.
    expect(await e.committed("10.9.1.199")).toBeUndefined();
    let lastResolved = false;
    void binds[199]!.then(() => (lastResolved = true));
    await Promise.resolve();
    expect(lastResolved).toBe(false);
    const results = await Promise.all(binds);
    expect(results.every((r) => r.ok)).toBe(true);
    for (let i = 0; i < 200; i += 37) expect(await e.committed(`10.9.${1 + (i >> 8)}.${i & 255}`)).toBeDefined();
  });
});

describe("PostgreSQL group commit", () => {
  it("a burst of binds on one node shares statements and commits; a repeated address still has one winner", async () => {
    const name = await pgDatabase("batch");
    const node = pgNode(name);
    const N = 640;
    const addr = (i: number) => `10.9.${1 + (i >> 8)}.${i & 255}`;
    const burst = Array.from({ length: N }, (_, i) => node.repo.bind(bindReq(mac(i), addr(i))));
    // 30 clients REQUEST one address in the same turn: the batcher cannot put them in one statement.
    const same = Array.from({ length: 30 }, (_, c) => node.repo.bind(bindReq(mac(1000 + c), ip(99))));
    const results = await Promise.all(burst);
    expect(results.every((r) => r.ok)).toBe(true);
    const sameResults = await Promise.all(same);
    const winners = sameResults.filter((r) => r.ok);
    expect(winners).toHaveLength(1);
    const winner = (winners[0] as { lease: Lease }).lease.mac;
    for (const r of sameResults) if (!r.ok) expect(r.holder?.mac).toBe(winner);
    // Each row names the transaction that wrote it: a burst of 640 took a handful, not 640.
    const { rows } = await node.db.query<{ n: number }>(
      "SELECT count(DISTINCT xmin::text)::int AS n FROM leases WHERE ip <> $1",
      [ip(99)],
    );
    expect(rows[0]!.n).toBeLessThanOrEqual(N / 32);
  });
});

describe("several nodes on one PostgreSQL", () => {
  const NODES = 4;

  it("N nodes racing for one small subnet never give an address to two clients", async () => {
    const name = await pgDatabase("race");
    const nodes = Array.from({ length: NODES }, () => pgNode(name, 4));
    const SIZE = 40;
    const CLIENTS = 120; // three clients per address: most must lose
    const pool = Array.from({ length: SIZE }, (_, i) => ip(100 + i));
    // Every client asks with the same candidate order (the worst case: every node's cursor on the same address),
    // through the node its number picks, all at once.
    const results = await Promise.all(
      Array.from({ length: CLIENTS }, (_, c) =>
        nodes[c % NODES]!.repo.allocate({ ...bindReq(mac(c), ""), candidates: pool }),
      ),
    );
    const won = results.flatMap((r, c) => (r.ok ? [{ mac: mac(c), ip: r.lease.ip }] : []));
    expect(won).toHaveLength(SIZE);
    expect(new Set(won.map((w) => w.ip)).size).toBe(SIZE);
    // The database agrees with what every node told its clients.
    const { rows } = await nodes[0]!.db.query<{ ip: string; mac: string }>(
      "SELECT ip, mac FROM leases WHERE subnet = $1 ORDER BY ip",
      [SUBNET],
    );
    expect(rows.map((r) => `${r.ip}=${r.mac}`).sort()).toEqual(won.map((w) => `${w.ip}=${w.mac}`).sort());
  });

  it("separate processes racing for one small subnet never give an address to two clients", async () => {
    const name = await pgDatabase("processes");
    const { db } = pgNode(name, 2);
    const PROCS = 3;
    const CLIENTS = 40;
    const SIZE = 50;
    // Hold the start gate until every process waits at it, so they all begin in the same instant.
    const gate = await db.connect();
    await gate.query("SELECT pg_advisory_lock($1)", [START_LOCK]);
    const procs = Array.from({ length: PROCS }, (_, n) =>
      runNode([pgs.url(name), String(n), String(CLIENTS), SUBNET, ip(100), String(SIZE), START_LOCK]),
    );
    try {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const { rows } = await db.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
        );
        if (rows[0]!.n === PROCS) break;
        if (Date.now() > deadline) throw new Error("the node processes never reached the start gate");
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      await gate.query("SELECT pg_advisory_unlock($1)", [START_LOCK]);
      gate.release();
    }
    const answers = (await Promise.all(procs)).flat();
    const won = answers.filter(([, a]) => a !== null) as [string, string][];
    expect(answers).toHaveLength(PROCS * CLIENTS);
    expect(won).toHaveLength(SIZE);
    expect(new Set(won.map(([, a]) => a)).size).toBe(SIZE);
    const { rows } = await db.query<{ ip: string; mac: string }>("SELECT ip, mac FROM leases WHERE subnet = $1", [
      SUBNET,
    ]);
    expect(rows.map((r) => `${r.ip}=${r.mac}`).sort()).toEqual(won.map(([m, a]) => `${a}=${m}`).sort());
  });

  it("direct REQUESTs for the same address from different clients on different nodes: exactly one wins", async () => {
    const name = await pgDatabase("bindrace");
    const nodes = Array.from({ length: NODES }, () => pgNode(name, 4));
    for (let round = 0; round < 20; round++) {
      const target = ip(10 + round);
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, c) => nodes[c % NODES]!.repo.bind(bindReq(mac(100 * round + c), target))),
      );
      const winners = results.filter((r) => r.ok);
      expect(winners, `round ${round}`).toHaveLength(1);
      // Every loser is told who holds it: the winner.
      const holder = (winners[0] as { lease: Lease }).lease.mac;
      for (const r of results) if (!r.ok) expect(r.holder?.mac).toBe(holder);
    }
  });

  it("random clients on random nodes over a shared subnet: every address has at most one live holder", async () => {
    const name = await pgDatabase("random");
    const nodes = Array.from({ length: NODES }, () => pgNode(name, 3));
    const SIZE = 30;
    let seed = 17;
    const rand = (n: number) => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n;
    // 90 clients, each trying up to 8 random addresses through a random node.
    const held = await Promise.all(
      Array.from({ length: 90 }, async (_, c) => {
        for (let t = 0; t < 8; t++) {
          const r = await nodes[rand(NODES)]!.repo.bind(bindReq(mac(c), ip(150 + rand(SIZE))));
          if (r.ok) return r.lease.ip;
        }
        return undefined;
      }),
    );
    const got = held.filter((x) => x !== undefined);
    expect(new Set(got).size).toBe(got.length);
    expect(got.length).toBeGreaterThan(0);
    expect(got.length).toBeLessThanOrEqual(SIZE);
  });

  it("a client renews its address through the other node, and keeps it", async () => {
    const name = await pgDatabase("renew");
    const [a, b] = [pgNode(name), pgNode(name)];
    const first = await a.repo.allocate({ ...bindReq(mac(1), ""), candidates: [ip(5), ip(6)] });
    expect(first.ok && first.lease.ip).toBe(ip(5));
    // Node A is gone; the client's RENEW/REBIND reaches node B, which never saw it.
    const renewed = await b.repo.bind(bindReq(mac(1), ip(5), T0 + HOUR / 2));
    expect(renewed).toMatchObject({ ok: true, lease: { ip: ip(5), mac: mac(1), expiresAt: T0 + HOUR / 2 + HOUR } });
    // Node A, back, sees the renewal: the address is still not free for anyone else past the first lease's end.
    expect((await a.repo.bind(bindReq(mac(2), ip(5), T0 + HOUR + 1))).ok).toBe(false);
    expect(await a.repo.get(SUBNET, ip(5))).toMatchObject({ mac: mac(1), expiresAt: T0 + HOUR / 2 + HOUR });
  });

  it("a decline on one node quarantines the address on the other; the quarantine ends there too", async () => {
    const name = await pgDatabase("decline");
    const [a, b] = [pgNode(name), pgNode(name)];
    await a.repo.bind(bindReq(mac(1), ip(7)));
    const d = await b.repo.decline(decl(mac(1), ip(7), T0 + 10));
    expect(d.ok).toBe(true);
    expect(await a.repo.bind(bindReq(mac(2), ip(7), T0 + 20))).toMatchObject({
      ok: false,
      holder: { state: "declined" },
    });
    const skip = await a.repo.allocate({ ...bindReq(mac(2), "", T0 + 20), candidates: [ip(7), ip(8)] });
    expect(skip.ok && skip.lease.ip).toBe(ip(8));
    expect((await a.repo.bind(bindReq(mac(3), ip(7), T0 + 10 + HOUR))).ok).toBe(true);
  });

  it("the quarantine cap holds across nodes declining at once", async () => {
    const name = await pgDatabase("declinecap");
    const nodes = Array.from({ length: NODES }, () => pgNode(name));
    const MAX = 5;
    await Promise.all(
      Array.from({ length: 24 }, (_, i) => nodes[i % NODES]!.repo.decline(decl(mac(i), ip(100 + i), T0 + i, MAX))),
    );
    const { rows } = await nodes[0]!.db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM leases WHERE subnet = $1 AND state = 'declined' AND expires_at > $2",
      [SUBNET, T0 + 100],
    );
    expect(rows[0]!.n).toBe(MAX);
  });

  it("a lease that expires on one node's write is free for another node's client; a release likewise", async () => {
    const name = await pgDatabase("expiry");
    const [a, b] = [pgNode(name), pgNode(name)];
    await a.repo.bind(bindReq(mac(1), ip(9), T0, 60_000));
    expect((await b.repo.bind(bindReq(mac(2), ip(9), T0 + 59_999))).ok).toBe(false);
    expect((await b.repo.bind(bindReq(mac(2), ip(9), T0 + 60_000))).ok).toBe(true);
    // The first client comes back on node A: its address is now someone else's.
    expect(await a.repo.bind(bindReq(mac(1), ip(9), T0 + 60_001))).toMatchObject({
      ok: false,
      holder: { mac: mac(2) },
    });
    await a.repo.bind(bindReq(mac(3), ip(11)));
    expect(await b.repo.release(SUBNET, mac(3), ip(11), T0 + 5)).toBe(true);
    expect((await a.repo.bind(bindReq(mac(4), ip(11), T0 + 6))).ok).toBe(true);
  });

  it("a node learns the others' writes from the change feed", async () => {
    const name = await pgDatabase("changes");
    const [a, b] = [pgNode(name), pgNode(name)];
    const start = await b.repo.cursor();
    expect((await b.repo.changes(start, 100)).leases).toEqual([]);
    await a.repo.bind(bindReq(mac(1), ip(12)));
    await a.repo.bind(bindReq(mac(2), ip(13)));
    const seen = await b.repo.changes(start, 100);
    expect(seen.leases.map((l) => [l.subnet, l.ip, l.mac])).toEqual([
      [SUBNET, ip(12), mac(1)],
      [SUBNET, ip(13), mac(2)],
    ]);
    await a.repo.release(SUBNET, mac(1), ip(12), T0 + 1);
    const later = await b.repo.changes(seen.cursor, 100);
    expect(later.leases.map((l) => [l.ip, l.state])).toEqual([[ip(12), "released"]]);
    expect((await b.repo.changes(later.cursor, 100)).leases).toEqual([]);
  });

  it("a write that commits after a later one is not skipped by the feed", async () => {
    const name = await pgDatabase("latecommit");
    const [a, b] = [pgNode(name), pgNode(name)];
    let cursor = await b.repo.cursor();
    const slow = await a.db.connect();
    const got: string[] = [];
    try {
      await slow.query("BEGIN");
      await slow.query(
        "INSERT INTO leases (subnet, ip, mac, state, expires_at, updated_at) VALUES ($1, $2, $3, 'bound', $4, $5)",
        [SUBNET, ip(20), mac(20), T0 + HOUR, T0],
      );
      // A later transaction commits first.
      await a.repo.bind(bindReq(mac(21), ip(21)));
      const early = await b.repo.changes(cursor, 100);
      got.push(...early.leases.map((l) => l.ip));
      cursor = early.cursor;
      await slow.query("COMMIT");
    } finally {
      slow.release();
    }
    const rest = await b.repo.changes(cursor, 100);
    got.push(...rest.leases.map((l) => l.ip));
    expect(got.sort()).toEqual([ip(20), ip(21)]);
  });

  it("pages the feed between transactions, and returns a transaction larger than the page whole", async () => {
    const name = await pgDatabase("pages");
    const [a, b] = [pgNode(name), pgNode(name)];
    let cursor = await b.repo.cursor();
    // Five binds in one turn: one batch, one transaction.
    await Promise.all([30, 31, 32, 33, 34].map((i) => a.repo.bind(bindReq(mac(i), ip(i)))));
    await a.repo.bind(bindReq(mac(35), ip(35)));
    const first = await b.repo.changes(cursor, 3);
    expect(first.leases.map((l) => l.ip).sort()).toEqual([30, 31, 32, 33, 34].map(ip).sort());
    cursor = first.cursor;
    const second = await b.repo.changes(cursor, 3);
    expect(second.leases.map((l) => l.ip)).toEqual([ip(35)]);
  });
});
