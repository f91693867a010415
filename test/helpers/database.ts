/**
 * The suite's engine switch. `KINDLING_TEST_DATABASE=postgres` runs every Kindling a test starts on PostgreSQL:
 * vitest's globalSetup (test/helpers/database-setup.ts) starts one cluster for the whole run and migrates a
 * template database once; `databaseFor(dataDir)` gives each data dir a database of its own, copied from that
 * template (`CREATE DATABASE … TEMPLATE`: milliseconds, no migration per start). Unset or `sqlite`, it returns
 * undefined and Kindling keeps its state in the SQLite file in the data dir, as by default.
 *
 * A data dir keeps its database for the test process's life, so a test that stops Kindling and starts it
 * again on the same data dir finds its state again, as it would in the SQLite file. Synchronous (psql), so
 * every start site can call it, including those that build a config or an argument list synchronously.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join, resolve } from "node:path";
import { openDb } from "../../src/store/db.ts";
import { type Lease, LeaseStore } from "../../src/store/leases.ts";
import { BIN, socketUrl } from "./postgres.ts";

export type TestEngine = "sqlite" | "postgres";

function engineFromEnv(): TestEngine {
  const value = process.env.KINDLING_TEST_DATABASE ?? "";
  if (value === "" || value === "sqlite") return "sqlite";
  if (value === "postgres") return "postgres";
  throw new Error(`KINDLING_TEST_DATABASE=${value}: must be sqlite or postgres`);
}

/** The engine the suite runs Kindling on. */
export const TEST_ENGINE: TestEngine = engineFromEnv();

/** Set by the globalSetup for the test processes (and what they spawn): the directory of the cluster's socket. */
export const SOCKET_ENV = "KINDLING_TEST_POSTGRES_SOCKET";
/** The migrated database every test database is copied from. */
export const TEMPLATE = "kindling_test_template";

/** Bound on one CREATE or DROP DATABASE (each takes well under a second here). */
const STEP_TIMEOUT_MS = 60_000;

/** Data dir (resolved) → its database's name. */
const databases = new Map<string, string>();

function socketDir(): string {
  const dir = process.env[SOCKET_ENV];
  if (!dir)
    throw new Error(
      `KINDLING_TEST_DATABASE=postgres but ${SOCKET_ENV} is not set: run the tests through vitest, whose ` +
        "globalSetup (test/helpers/database-setup.ts) starts the run's PostgreSQL",
    );
  return dir;
}

/** Runs one statement on the cluster as the `postgres` superuser, in `database`; returns its unaligned output. */
export function psql(dir: string, sql: string, database = "postgres"): string {
  const r = spawnSync(
    `${BIN}/psql`,
    ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", dir, "-U", "postgres", "-d", database, "-c", sql],
    { encoding: "utf8", timeout: STEP_TIMEOUT_MS },
  );
  if (r.error || r.status !== 0) throw new Error(`psql: ${sql}: ${r.error?.message ?? r.stderr}`);
  return r.stdout;
}

/**
 * The `database` setting for a Kindling on `dataDir`: a postgres:// URL of the data dir's own database under
 * `KINDLING_TEST_DATABASE=postgres` (created on first use), undefined on SQLite.
 */
export function databaseFor(dataDir: string): string | undefined {
  if (TEST_ENGINE === "sqlite") return undefined;
  const dir = socketDir();
  const key = resolve(dataDir);
  let name = databases.get(key);
  if (!name) {
    // Random, not a counter: test processes come and go (and pids get reused) while the cluster stays.
    name = `kt_${randomBytes(8).toString("hex")}`;
    // FILE_COPY copies the template's files (8 MB, nearly all catalogs) at once; WAL_LOG, 15's default, copies
    // them block by block through the WAL and measured slower for a template this small.
    psql(dir, `CREATE DATABASE ${name} TEMPLATE ${TEMPLATE} STRATEGY FILE_COPY`);
    databases.set(key, name);
  }
  return socketUrl(dir, name);
}

/** Drops `dataDir`'s database, if it has one: its data dir is gone, as the SQLite file would be. */
export function dropDatabaseFor(dataDir: string): void {
  const key = resolve(dataDir);
  const name = databases.get(key);
  if (!name) return;
  databases.delete(key);
  psql(socketDir(), `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
}

/**
 * What copying `fromDir`'s database files into `toDir` copies, on PostgreSQL too: `toDir` gets a copy of
 * `fromDir`'s database (no Kindling may still be connected to it). Nothing to do on SQLite, where the files
 * are the database.
 */
export function copyDatabase(fromDir: string, toDir: string): void {
  const from = databases.get(resolve(fromDir));
  if (!from) return;
  const name = `kt_${randomBytes(8).toString("hex")}`;
  psql(socketDir(), `CREATE DATABASE ${name} TEMPLATE ${from} STRATEGY FILE_COPY`);
  databases.set(resolve(toDir), name);
}

/** `{ database }` to spread into a config object (in-process or a YAML file); `{}` on SQLite. */
export function databaseSetting(dataDir: string): { database?: string } {
  const url = databaseFor(dataDir);
  return url ? { database: url } : {};
}

/** `{ KINDLING_DATABASE }` to spread into a child process's environment; `{}` on SQLite. */
export function databaseEnv(dataDir: string): Record<string, string> {
  const url = databaseFor(dataDir);
  return url ? { KINDLING_DATABASE: url } : {};
}

/**
 * Every lease the Kindling on `dataDir` has written, by address, read from its engine: the SQLite file in the
 * data dir, or the data dir's PostgreSQL database. For tests that check what was committed, not what a
 * client was told.
 */
export function leasesIn(dataDir: string): Lease[] {
  const name = databases.get(resolve(dataDir));
  if (!name) {
    const db = openDb(join(dataDir, "kindling.db"));
    try {
      return new LeaseStore(db).all();
    } finally {
      db.close();
    }
  }
  const json = psql(
    socketDir(),
    `SELECT coalesce(json_agg(json_build_object('ip', ip, 'mac', mac, 'state', state, 'expiresAt', expires_at,
       'hostname', hostname, 'updatedAt', updated_at) ORDER BY ip), '[]') FROM leases`,
    name,
  );
  return JSON.parse(json) as Lease[];
}

/**
 * Writes a bound lease where the Kindling on `dataDir` keeps them (its SQLite file, or its PostgreSQL
 * database), as its DHCP server would: for tests of what a lease allows without a DHCP exchange.
 */
export function putLeaseIn(dataDir: string, lease: { ip: string; mac: string; expiresAt: number }): void {
  const name = databases.get(resolve(dataDir));
  const now = Date.now();
  if (!name) {
    const db = openDb(join(dataDir, "kindling.db"));
    try {
      const leases = new LeaseStore(db);
      leases.put({ ...lease, state: "bound", hostname: null, updatedAt: now });
      leases.flush();
    } finally {
      db.close();
    }
    return;
  }
  psql(
    socketDir(),
    `INSERT INTO leases (subnet, ip, mac, state, expires_at, updated_at)
     VALUES ('test', '${lease.ip}', '${lease.mac}', 'bound', ${lease.expiresAt}, ${now})`,
    name,
  );
}
