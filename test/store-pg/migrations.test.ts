import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate, SchemaTooNewError } from "../../src/store/db.ts";
import { MIGRATIONS } from "../../src/store/migrations.ts";
import { PgDatabase } from "../../src/store/pg/database.ts";
import { MIGRATION_LOCK_KEY, migratePg, pgSchemaVersion } from "../../src/store/pg/migrate.ts";
import { PG_MIGRATIONS } from "../../src/store/pg/migrations.ts";
import { startPostgres, type TestPostgres } from "../helpers/postgres.ts";
import { runNodeScript } from "./node-script.ts";

let pgs: TestPostgres;
const open: PgDatabase[] = [];
const connect = (db: string) => {
  const d = new PgDatabase({ url: pgs.url(db), poolMax: 3 });
  open.push(d);
  return d;
};

beforeAll(() => {
  pgs = startPostgres();
});
afterAll(async () => {
  await Promise.all(open.map((d) => d.close()));
  pgs?.stop();
});

/** Runs test/store-pg/migrate-node.ts as its own process; resolves with its MigrateResult. */
function migrateInProcess(url: string): Promise<{ from: number; to: number; applied: number[] }> {
  return runNodeScript("migrate-node.ts", [url]);
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** table → sorted column names, for comparing the engines' schemas. */
async function pgColumns(db: PgDatabase): Promise<Record<string, string[]>> {
  const { rows } = await db.query<{ t: string; c: string }>(
    `SELECT table_name AS t, column_name AS c FROM information_schema.columns
     WHERE table_schema = 'public' AND table_name <> 'schema_migrations' ORDER BY 1, 2`,
  );
  const out: Record<string, string[]> = {};
  for (const r of rows) (out[r.t] ??= []).push(r.c);
  return out;
}
function sqliteColumns(db: Database.Database): Record<string, string[]> {
  const tables = db
    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
    .all() as { name: string }[];
  return Object.fromEntries(
    tables.map(({ name }) => [
      name,
      (db.prepare(`PRAGMA table_info(${name})`).all() as { name: string }[]).map((c) => c.name).sort(),
    ]),
  );
}

/** Both engines' columns, less what only one engine has on purpose (the migrations say why). */
async function sharedColumns(
  db: PgDatabase,
  lite: Database.Database,
): Promise<[Record<string, string[]>, Record<string, string[]>]> {
  const pgCols = await pgColumns(db);
  // PostgreSQL keys a lease by (subnet, ip) and numbers its writes.
  pgCols.leases = pgCols.leases!.filter((c) => c !== "subnet" && c !== "txid");
  // Shipped events keep the id their node gave them; the shared secrets live only in PostgreSQL.
  if (pgCols.events) pgCols.events = pgCols.events.filter((c) => c !== "origin_id");
  delete pgCols.secrets;
  // A node's replica bookkeeping lives only in its SQLite file.
  const liteCols = sqliteColumns(lite);
  delete liteCols.pending_sightings;
  delete liteCols.replication;
  return [pgCols, liteCols];
}

describe("PostgreSQL migrations", () => {
  it("cover every SQLite schema version, with the same tables and columns at each version", async () => {
    expect(PG_MIGRATIONS.length, "a SQLite migration has no PostgreSQL counterpart in src/store/pg/migrations.ts").toBe(
      MIGRATIONS.length,
    );
    const db = connect(await pgs.createDatabase("parity"));
    const lite = new Database(":memory:");
    try {
      for (let v = 1; v <= MIGRATIONS.length; v++) {
        migrate(lite, MIGRATIONS.slice(0, v));
        const r = await migratePg(db, { migrations: PG_MIGRATIONS.slice(0, v) });
        expect(r.applied).toEqual([v]);
        const [pgCols, liteCols] = await sharedColumns(db, lite);
        expect(pgCols, `schema version ${v}`).toEqual(liteCols);
      }
    } finally {
      lite.close();
    }
  });

  it("two nodes starting on one empty database at once: one migrates, the other waits and finds it done", async () => {
    const name = await pgs.createDatabase("race");
    const db = connect(name);
    // Hold the migration lock until both processes wait on it, so they really contend when it is released.
    const holder = await db.connect();
    await holder.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK_KEY]);
    const a = migrateInProcess(pgs.url(name));
    const b = migrateInProcess(pgs.url(name));
    try {
      await until("both nodes waiting for the migration lock", async () => {
        const { rows } = await db.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
        );
        return rows[0]!.n === 2 || undefined;
      });
    } finally {
      await holder.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK_KEY]);
      holder.release();
    }
    const results = await Promise.all([a, b]);
    const all = PG_MIGRATIONS.map((_, i) => i + 1);
    expect(results.map((r) => r.applied).sort((x, y) => y.length - x.length)).toEqual([all, []]);
    expect(results.every((r) => r.to === PG_MIGRATIONS.length)).toBe(true);
    const { rows } = await db.query<{ version: number }>("SELECT version FROM schema_migrations ORDER BY version");
    expect(rows.map((r) => r.version)).toEqual(all);
    const lite = new Database(":memory:");
    migrate(lite);
    const [pgCols, liteCols] = await sharedColumns(db, lite);
    expect(pgCols).toEqual(liteCols);
    lite.close();
  });

  it("many pools of one process migrating at once end with one schema", async () => {
    const name = await pgs.createDatabase("pools");
    const results = await Promise.all([1, 2, 3, 4].map(() => migratePg(connect(name))));
    expect(results.flatMap((r) => r.applied).sort((x, y) => x - y)).toEqual(PG_MIGRATIONS.map((_, i) => i + 1));
    expect(await pgSchemaVersion(connect(name))).toBe(PG_MIGRATIONS.length);
    // A later start finds nothing to do.
    expect((await migratePg(connect(name))).applied).toEqual([]);
  });

  it("refuses a database written by a newer Kindling, naming both versions, and changes nothing", async () => {
    const name = await pgs.createDatabase("newer");
    const db = connect(name);
    await migratePg(db);
    const newer = PG_MIGRATIONS.length + 1;
    await db.query("INSERT INTO schema_migrations (version) VALUES ($1)", [newer]);
    const err = await migratePg(db).catch((e) => e);
    expect(err).toBeInstanceOf(SchemaTooNewError);
    expect(err.message).toContain(`database schema version ${newer} is newer than this Kindling knows (${newer - 1})`);
    expect(await pgSchemaVersion(db)).toBe(newer);
    // The refusal released the lock: the next node is not kept waiting.
    const probe = await db.query<{ ok: boolean }>("SELECT pg_try_advisory_lock($1) AND pg_advisory_unlock($1) AS ok", [
      MIGRATION_LOCK_KEY,
    ]);
    expect(probe.rows[0]!.ok).toBe(true);
  });

  it("a failing migration leaves the version before it, recorded and intact", async () => {
    const db = connect(await pgs.createDatabase("failing"));
    const broken = [...PG_MIGRATIONS, "CREATE TABLE extra (a INTEGER); SELECT no_such_function();"];
    const err = await migratePg(db, { migrations: broken }).catch((e) => e);
    expect(err.message).toContain(`database migration ${broken.length} failed`);
    expect(await pgSchemaVersion(db)).toBe(PG_MIGRATIONS.length);
    const { rows } = await db.query<{ t: string | null }>("SELECT to_regclass('extra')::text AS t");
    expect(rows[0]!.t).toBeNull();
  });
});
