/**
 * One node's connection to PostgreSQL: a bounded pool, statement timeouts, and an up/down state. When the
 * database stops answering, callers get DatabaseUnavailableError at once (the API maps it to 503, the DHCP
 * server refuses new allocations) instead of every request waiting out a connect timeout, and one probe
 * retries with exponential backoff until the database answers again.
 */
import pg from "pg";
import type { Logger } from "../../log.ts";
import { silentLogger } from "../../log.ts";
import { type PgSettings, type PgSettingsInput, PgSettingsSchema } from "./settings.ts";

export class DatabaseUnavailableError extends Error {
  override name = "DatabaseUnavailableError";
}

/** More queries are waiting for a connection than `maxWaiting`: the caller drops or retries the request. */
export class DatabaseBusyError extends Error {
  override name = "DatabaseBusyError";
}

export interface Reachability {
  reachable: boolean;
  /** Round trip of the probe query, when it answered. */
  latencyMs?: number;
  /** Why it did not. */
  error?: string;
}

/** A query with a name is prepared once per connection and reused (PostgreSQL skips parsing and planning). */
export type Query = string | { name: string; text: string };

// Errors that say "the database or the way to it is gone", as opposed to "this statement failed".
const CONNECTION_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOENT", // unix socket gone (server stopped)
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now (starting up, shutting down, recovering)
]);

export function isConnectionError(err: unknown): boolean {
  if (err instanceof DatabaseUnavailableError) return true;
  const e = err as { code?: string; message?: string };
  if (e.code && (CONNECTION_CODES.has(e.code) || e.code.startsWith("08"))) return true;
  // node-postgres reports these without a code.
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/.test(
    e.message ?? "",
  );
}

export class PgDatabase {
  readonly settings: PgSettings;
  private readonly pool: pg.Pool;
  private up = true;
  private backoffMs: number;
  private retry: NodeJS.Timeout | undefined;
  private closed = false;
  /** Queries and transactions running or waiting for a connection. */
  private inFlight = 0;
  /** The last connection error, for /healthz and logs. */
  lastError: string | undefined;
  /** Told each query's and transaction's duration (metrics); failures too. */
  onQuery: ((ms: number, ok: boolean) => void) | undefined;

  constructor(
    settings: PgSettingsInput,
    private readonly log: Logger = silentLogger,
  ) {
    this.settings = PgSettingsSchema.parse(settings);
    const s = this.settings;
    this.backoffMs = s.backoffMinMs;
    this.pool = new pg.Pool({
      connectionString: s.url,
      max: s.poolMax,
      idleTimeoutMillis: s.idleTimeoutMs,
      connectionTimeoutMillis: s.connectTimeoutMs,
      // Server side: the statement is cancelled and its locks released.
      statement_timeout: s.statementTimeoutMs,
      // Client side, for a server that stopped answering altogether (a partition): the server-side timeout
      // cannot fire where nothing reaches the server.
      query_timeout: s.statementTimeoutMs + s.connectTimeoutMs,
      application_name: "kindling",
      keepAlive: true,
    });
    // An idle connection the server closed (restart, failover) must not crash the process: the pool drops it.
    this.pool.on("error", (err) => this.down(err));
  }

  /** Whether the last contact with the database worked; false while the backoff probe retries. */
  get available(): boolean {
    return this.up;
  }

  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    q: Query,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>> {
    this.admit();
    const started = performance.now();
    let ok = false;
    try {
      const r = await this.pool.query<R>(typeof q === "string" ? { text: q, values } : { ...q, values });
      ok = true;
      return r;
    } catch (err) {
      throw this.classify(err);
    } finally {
      this.inFlight--;
      this.onQuery?.(performance.now() - started, ok);
    }
  }

  /** Runs `fn` in one transaction on one connection; rolls back if it throws. */
  async transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    this.admit();
    const started = performance.now();
    let ok = false;
    try {
      const r = await this.inTransaction(fn);
      ok = true;
      return r;
    } finally {
      this.inFlight--;
      this.onQuery?.(performance.now() - started, ok);
    }
  }

  private async inTransaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw this.classify(err);
    }
    let broken = false;
    // A checked-out connection that dies between two statements emits 'error' with no pool listener attached:
    // unheard, that would end the process.
    const onError = (err: Error) => {
      broken = true;
      this.down(err);
    };
    client.on("error", onError);
    try {
      await client.query("BEGIN");
      const result = await fn(client);
      await client.query("COMMIT");
      return result;
    } catch (err) {
      if (isConnectionError(err)) broken = true;
      else await client.query("ROLLBACK").catch(() => (broken = true));
      throw this.classify(err);
    } finally {
      client.off("error", onError);
      // A connection in an unknown state is destroyed, not handed to the next caller.
      client.release(broken);
    }
  }

  /** A dedicated connection for session-level work (advisory locks); the caller releases it. */
  async connect(): Promise<pg.PoolClient> {
    this.ensureUp();
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw this.classify(err);
    }
    // Heard while the caller holds it (see inTransaction); the listener leaves with the connection.
    const onError = (err: Error) => this.down(err);
    client.on("error", onError);
    const release = client.release.bind(client);
    client.release = (err?: Error | boolean) => {
      client.off("error", onError);
      client.release = release;
      return release(err);
    };
    return client;
  }

  /** `SELECT 1` on a pool connection, bounded by the connect and statement timeouts: for /healthz. */
  async probe(): Promise<Reachability> {
    const started = performance.now();
    try {
      await this.pool.query("SELECT 1");
      this.markUp();
      return { reachable: true, latencyMs: performance.now() - started };
    } catch (err) {
      if (isConnectionError(err)) this.down(err);
      return { reachable: false, error: (err as Error).message };
    }
  }

  stats(): { inFlight: number; total: number; idle: number; waiting: number; available: boolean } {
    return {
      inFlight: this.inFlight,
      total: this.pool.totalCount,
      idle: this.pool.idleCount,
      waiting: this.pool.waitingCount,
      available: this.up,
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    await this.pool.end();
  }

  /** Counts a query in, or refuses it: database down, or too many already waiting. */
  private admit(): void {
    this.ensureUp();
    if (this.inFlight >= this.settings.poolMax + this.settings.maxWaiting)
      throw new DatabaseBusyError(
        `database busy: ${this.inFlight} queries running or waiting (poolMax ${this.settings.poolMax} + maxWaiting ${this.settings.maxWaiting})`,
      );
    this.inFlight++;
  }

  private ensureUp(): void {
    if (!this.up)
      throw new DatabaseUnavailableError(`database unreachable (${this.lastError ?? "unknown error"}); retrying`);
  }

  private classify(err: unknown): unknown {
    if (!isConnectionError(err) || err instanceof DatabaseUnavailableError) return err;
    this.down(err);
    return new DatabaseUnavailableError(`database unreachable: ${(err as Error).message}`, { cause: err });
  }

  private down(err: unknown): void {
    this.lastError = (err as Error).message;
    if (!this.up || this.closed) return;
    this.up = false;
    this.log.error({ err: this.lastError }, "store: PostgreSQL unreachable; refusing writes and retrying with backoff");
    this.scheduleRetry();
  }

  private markUp(): void {
    clearTimeout(this.retry);
    this.retry = undefined;
    this.backoffMs = this.settings.backoffMinMs;
    if (this.up) return;
    this.up = true;
    this.log.info("store: PostgreSQL reachable again");
  }

  private scheduleRetry(): void {
    if (this.closed) return;
    // Jittered: nodes that lost the database together do not all come back in the same millisecond.
    const wait = Math.round(this.backoffMs / 2 + (Math.random() * this.backoffMs) / 2);
    this.backoffMs = Math.min(this.backoffMs * 2, this.settings.backoffMaxMs);
    this.retry = setTimeout(async () => {
      const r = await this.probe();
      if (!r.reachable && !this.up) this.scheduleRetry();
    }, wait);
    this.retry.unref();
  }
}
