/**
 * Brings a PostgreSQL database to the newest schema version, one node at a time: every node runs this at
 * start, and a session-level advisory lock makes the others wait until the first has finished, then find
 * nothing left to do. Each version is applied and recorded in schema_migrations in one transaction
 * (PostgreSQL's DDL is transactional), so a node killed halfway leaves the previous version intact.
 */
import { SchemaTooNewError } from "../db.ts";
import type { PgDatabase } from "./database.ts";
import { PG_MIGRATIONS } from "./migrations.ts";

/** pg_advisory_lock key: "kindling" in ASCII, so an operator can recognise it in pg_locks (objid/classid). */
export const MIGRATION_LOCK_KEY = 0x6b696e646c696e67n.toString();

export interface MigrateResult {
  /** Version found before this run (0 = empty database). */
  from: number;
  to: number;
  /** Versions this run applied itself (another node may have applied the rest while this one waited). */
  applied: number[];
}

export async function migratePg(
  db: PgDatabase,
  opts: { migrations?: readonly string[]; lockTimeoutMs?: number } = {},
): Promise<MigrateResult> {
  const migrations = opts.migrations ?? PG_MIGRATIONS;
  const client = await db.connect();
  try {
    // DDL may rewrite big tables: no statement timeout here, but a bound on waiting for the lock.
    await client.query("SET statement_timeout = 0");
    await client.query(`SET lock_timeout = ${Math.round(opts.lockTimeoutMs ?? 120_000)}`);
    try {
      await client.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK_KEY]);
    } catch (err) {
      if ((err as { code?: string }).code === "55P03")
        throw new Error(
          "database migration: another Kindling node has held the migration lock for longer than the lock " +
            "timeout; it is still migrating or hung (see pg_locks for locktype 'advisory')",
          { cause: err },
        );
      throw err;
    }
    try {
      await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version     INTEGER PRIMARY KEY,
        applied_at  TIMESTAMPTZ NOT NULL DEFAULT now()
      )`);
      const { rows } = await client.query<{ v: number | null }>("SELECT max(version) AS v FROM schema_migrations");
      const from = rows[0]?.v ?? 0;
      if (from > migrations.length)
        throw new SchemaTooNewError(
          `database schema version ${from} is newer than this Kindling knows (${migrations.length}); ` +
            "upgrade Kindling on this node (every node sharing a database must run the same or a newer version) " +
            "or restore a backup of the database",
        );
      const applied: number[] = [];
      for (let v = from; v < migrations.length; v++) {
        await client.query("BEGIN");
        try {
          await client.query(migrations[v]!);
          await client.query("INSERT INTO schema_migrations (version) VALUES ($1)", [v + 1]);
          await client.query("COMMIT");
        } catch (err) {
          await client.query("ROLLBACK");
          throw new Error(`database migration ${v + 1} failed: ${(err as Error).message}`, { cause: err });
        }
        applied.push(v + 1);
      }
      return { from, to: migrations.length, applied };
    } finally {
      await client.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK_KEY]);
    }
  } finally {
    // Closed, not returned to the pool: its session settings (no statement timeout) must not serve queries,
    // and after an error its state is unknown; closing also releases a session lock it may still hold.
    client.release(true);
  }
}

/** The version a database is at (0 when never migrated). */
export async function pgSchemaVersion(db: PgDatabase): Promise<number> {
  const { rows } = await db.query<{ v: number | null }>(
    "SELECT CASE WHEN to_regclass('schema_migrations') IS NULL THEN 0 ELSE (SELECT max(version) FROM schema_migrations) END AS v",
  );
  return rows[0]?.v ?? 0;
}
