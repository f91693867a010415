import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DatabaseBusyError, DatabaseUnavailableError, PgDatabase } from "../../src/store/pg/database.ts";
import { startPostgres, type TestPostgres } from "../helpers/postgres.ts";

let pgs: TestPostgres;
let name: string;
const open: PgDatabase[] = [];
const connect = (
  opts: { poolMax?: number; maxWaiting?: number; statementTimeoutMs?: number; connectTimeoutMs?: number } = {},
) => {
  const d = new PgDatabase({ url: pgs.url(name), backoffMinMs: 50, backoffMaxMs: 400, ...opts });
  open.push(d);
  return d;
};

beforeAll(async () => {
  pgs = startPostgres();
  name = await pgs.createDatabase("database");
});
afterAll(async () => {
  await Promise.all(open.map((d) => d.close()));
  pgs?.stop();
});

async function until(what: string, ok: () => Promise<boolean> | boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe("PgDatabase", () => {
  it("never opens more connections than poolMax: the rest of the queries wait their turn", async () => {
    const db = connect({ poolMax: 2 });
    const watcher = connect({ poolMax: 1 });
    let peak = 0;
    let done = false;
    const watch = (async () => {
      while (!done) {
        const { rows } = await watcher.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(0.2)%'",
        );
        peak = Math.max(peak, rows[0]!.n);
      }
    })();
    const results = await Promise.all(Array.from({ length: 6 }, () => db.query("SELECT pg_sleep(0.2), 1 AS one")));
    done = true;
    await watch;
    expect(results.map((r) => r.rows[0]!.one)).toEqual([1, 1, 1, 1, 1, 1]);
    expect(peak).toBe(2);
    expect(db.stats().total).toBeLessThanOrEqual(2);
  });

  it("refuses queries beyond poolMax + maxWaiting at once, and takes them again once the queue drains", async () => {
    const db = connect({ poolMax: 1, maxWaiting: 2 });
    const outcomes = await Promise.allSettled(Array.from({ length: 5 }, () => db.query("SELECT pg_sleep(0.1)")));
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "fulfilled", "fulfilled", "rejected", "rejected"]);
    const refused = (outcomes[3] as PromiseRejectedResult).reason;
    expect(refused).toBeInstanceOf(DatabaseBusyError);
    expect(refused.message).toContain("poolMax 1 + maxWaiting 2");
    expect(db.stats().inFlight).toBe(0);
    expect((await db.query("SELECT 1 AS one")).rows[0]!.one).toBe(1);
  });

  it("cancels a statement past statementTimeoutMs on the server and stays available", async () => {
    const db = connect({ statementTimeoutMs: 300 });
    const err = await db.query("SELECT pg_sleep(30)").catch((e) => e);
    expect(err.code).toBe("57014"); // query_canceled
    expect(db.available).toBe(true);
    expect((await db.query("SELECT 1 AS one")).rows[0]!.one).toBe(1);
  });

  it("runs a transaction on one connection and rolls it back when its body throws", async () => {
    const db = connect();
    await db.query("CREATE TABLE tx_probe (n INTEGER)");
    await expect(
      db.transaction(async (c) => {
        await c.query("INSERT INTO tx_probe VALUES (1)");
        throw new Error("body failed");
      }),
    ).rejects.toThrow("body failed");
    await db.transaction((c) => c.query("INSERT INTO tx_probe VALUES (2)"));
    expect((await db.query("SELECT n FROM tx_probe")).rows).toEqual([{ n: 2 }]);
  });

  it("while PostgreSQL is down: fails fast with DatabaseUnavailableError, probe says unreachable; reconnects by itself", async () => {
    const db = connect({ connectTimeoutMs: 1000 });
    expect(await db.probe()).toMatchObject({ reachable: true });
    pgs.stopServer();
    try {
      const first = await db.query("SELECT 1").catch((e) => e);
      expect(first).toBeInstanceOf(DatabaseUnavailableError);
      expect(db.available).toBe(false);
      // Later callers are refused at once, naming the cause, instead of each waiting out a connect.
      const next = await db.query("SELECT 1").catch((e) => e);
      expect(next).toBeInstanceOf(DatabaseUnavailableError);
      expect(next.message).toMatch(/database unreachable \(.+\); retrying/);
      await expect(db.transaction(async () => 1)).rejects.toBeInstanceOf(DatabaseUnavailableError);
      const probe = await db.probe();
      expect(probe.reachable).toBe(false);
      expect(probe.error).toBeTruthy();
    } finally {
      pgs.start();
    }
    // No caller retries: the backoff probe finds the database again.
    await until("the pool to reconnect", () => db.available);
    expect((await db.query("SELECT 1 AS one")).rows[0]!.one).toBe(1);
    expect(await db.probe()).toMatchObject({ reachable: true });
  });

  it("rejects a URL that is not postgres://, naming the field", () => {
    expect(() => new PgDatabase({ url: "mysql://x/y" })).toThrow(/url.*postgres:\/\//s);
  });
});
