/**
 * Which database holds full mode's leases, from the `database` setting: unset, the node's SQLite file (the
 * DHCP server opens its repository on it); a `postgres://` URL, a PostgreSQL database shared by several nodes,
 * migrated at start under the advisory lock (pg/migrate.ts). Machines, profiles, groups and events stay in
 * the node's SQLite file in both cases for now.
 */
import type { Logger } from "../log.ts";
import type { Db } from "./db.ts";
import type { LeaseRepository } from "./lease-repository.ts";
import { PgDatabase, type Reachability } from "./pg/database.ts";
import { PgLeaseRepository } from "./pg/leases.ts";
import { migratePg } from "./pg/migrate.ts";
import type { PgSettings } from "./pg/settings.ts";

export interface PoolStats {
  inFlight: number;
  total: number;
  idle: number;
  waiting: number;
}

export interface LeaseDatabase {
  readonly engine: "sqlite" | "postgres";
  /** Where, for the start-up log and /healthz: the file, or the URL with its password masked. */
  readonly where: string;
  /** The PostgreSQL pool the shared state uses; undefined on SQLite. */
  readonly pg: PgDatabase | undefined;
  /** PostgreSQL's repository; undefined on SQLite, where the DHCP server keeps its own on the file. */
  readonly repository: LeaseRepository | undefined;
  /** Whether the database answered last time (false while PostgreSQL's backoff probe retries). */
  available(): boolean;
  /** A round trip now (`SELECT 1`), for /healthz. */
  probe(): Promise<Reachability>;
  /** PostgreSQL's connection pool; undefined on SQLite. */
  pool(): PoolStats | undefined;
  /** Called with each query's duration in ms (metrics); PostgreSQL only. */
  onQuery(observe: (ms: number, ok: boolean) => void): void;
  close(): Promise<void>;
}

/** `postgres://user:secret@host/db?password=x` → `postgres://user:***@host/db?password=***`. */
export function maskUrl(url: string): string {
  return url.replace(/^(postgres(?:ql)?:\/\/[^:@/]*:)[^@]*@/, "$1***@").replace(/([?&]password=)[^&]*/gi, "$1***");
}

export async function openLeaseDatabase(
  opts: { url: string | undefined; postgres: Omit<PgSettings, "url">; sqlite: { db: Db; file: string } },
  log: Logger,
): Promise<LeaseDatabase> {
  if (!opts.url) {
    const { db, file } = opts.sqlite;
    return {
      engine: "sqlite",
      where: file,
      pg: undefined,
      repository: undefined,
      available: () => true,
      async probe() {
        const started = performance.now();
        try {
          db.prepare("SELECT 1").get();
          return { reachable: true, latencyMs: performance.now() - started };
        } catch (err) {
          return { reachable: false, error: (err as Error).message };
        }
      },
      pool: () => undefined,
      onQuery() {},
      async close() {},
    };
  }
  const pg = new PgDatabase({ ...opts.postgres, url: opts.url }, log);
  try {
    const m = await migratePg(pg);
    if (m.applied.length) log.info({ from: m.from, to: m.to }, "store: PostgreSQL schema migrated");
  } catch (err) {
    await pg.close();
    throw new Error(`database ${maskUrl(opts.url)}: ${(err as Error).message}`, { cause: err });
  }
  return {
    engine: "postgres",
    where: maskUrl(opts.url),
    pg,
    repository: new PgLeaseRepository(pg),
    available: () => pg.available,
    probe: () => pg.probe(),
    pool: () => pg.stats(),
    onQuery: (observe) => {
      pg.onQuery = observe;
    },
    close: () => pg.close(),
  };
}
