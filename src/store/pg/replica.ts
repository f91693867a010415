import pg from "pg";
import type { Logger } from "../../log.ts";
import {
  BMC_COLUMNS,
  GROUP_COLUMNS,
  MACHINE_COLUMNS,
  PROFILE_COLUMNS,
  type ReplicaChanges,
  type ReplicaState,
  type ReplicaTables,
} from "../replica-tables.ts";
import { type ChangeKind, parseNotice, STATE_CHANNEL } from "./changes.ts";
import { DatabaseUnavailableError, isConnectionError, type PgDatabase } from "./database.ts";
import type { ReplicaSink } from "./state-writes.ts";

/** Keys waiting to be refetched past which one full resync is cheaper (and the memory stays bounded). */
const MAX_PENDING_KEYS = 10_000;
/** Notices arriving within this long are fetched together. */
const COALESCE_MS = 5;
/** After a failed refetch, the wait before the next try (the listener's reconnect may resync sooner). */
const RETRY_MS = 1_000;
const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 5_000;
/** The replication row that says this file's own state was offered to PostgreSQL once. */
const ADOPTED = "replica.adopted";

/** Each shared table: its notice kind, columns and key. Parents first (a BMC needs its machine). */
const TABLES = [
  { kind: "p", table: "profiles", cols: PROFILE_COLUMNS, key: "name" },
  { kind: "g", table: "groups", cols: GROUP_COLUMNS, key: "name" },
  { kind: "m", table: "machines", cols: MACHINE_COLUMNS, key: "mac" },
  { kind: "b", table: "bmcs", cols: BMC_COLUMNS, key: "mac" },
] as const satisfies readonly { kind: ChangeKind; table: keyof ReplicaState; cols: readonly string[]; key: string }[];

export interface ReplicaStatus {
  /** Whether the node hears other nodes' changes now. */
  listening: boolean;
  /** When the replica last matched PostgreSQL in full (start, reconnect). */
  syncedAt: string | undefined;
}

/**
 * Keeps this node's replica (../replica-tables.ts) equal to PostgreSQL's machines, profiles and groups. One
 * dedicated connection LISTENs for the notices every write sends when it commits (changes.ts); notices are
 * coalesced and the rows they name refetched, one fetch at a time, so rows are applied in the order PostgreSQL
 * committed them. On every (re)connect the node listens first and then copies the full state, so no change
 * falls between the two. A node's own writes are applied at once (read your writes) and refetched like any
 * notice, which settles a race with another node's write to the same row.
 */
export class Replica implements ReplicaSink {
  private client: pg.Client | undefined;
  private readonly keys: Record<ChangeKind, Set<string>> = {
    m: new Set(),
    p: new Set(),
    g: new Set(),
    b: new Set(),
  };
  private needResync = false;
  private fetching: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private reconnectMs = RECONNECT_MIN_MS;
  private stopped = false;
  private syncedAt: string | undefined;

  constructor(
    private readonly pg: PgDatabase,
    private readonly tables: ReplicaTables,
    private readonly log: Logger,
  ) {}

  /**
   * Offers this file's own state to PostgreSQL the first time (a node moving from SQLite keeps its
   * machines; what PostgreSQL already has wins), then listens and copies the full state. Throws when
   * PostgreSQL cannot be reached: a node starts only from a known state.
   */
  async start(): Promise<void> {
    if (this.tables.mark(ADOPTED) === undefined) await this.adopt();
    await this.listen();
  }

  status(): ReplicaStatus {
    return { listening: this.client !== undefined, syncedAt: this.syncedAt };
  }

  applyOwn(changes: ReplicaChanges, also: () => void): void {
    this.tables.applyChanges(changes, also);
    for (const t of TABLES)
      for (const r of (changes[t.table]?.rows ?? []) as Record<string, unknown>[]) this.noted(t.kind, String(r[t.key]));
  }

  /** Refetches one row in order with the notices heard; throws while PostgreSQL cannot be asked. */
  async refresh(kind: ChangeKind, key: string): Promise<void> {
    if (!this.pg.available) throw new DatabaseUnavailableError("database unreachable; retrying");
    this.noted(kind, key);
    await this.settled();
  }

  forgetPending(mac: string): void {
    this.tables.forgetPending(mac);
  }

  /** Resolves once every notice heard so far is applied (tests, shutdown); at once while PostgreSQL is away. */
  async settled(): Promise<void> {
    while ((this.fetching || this.timer) && !this.needResync) {
      if (this.timer) {
        clearTimeout(this.timer);
        this.timer = undefined;
        this.fetching ??= this.drain();
      }
      await this.fetching;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.fetching;
    const c = this.client;
    this.client = undefined;
    await c?.end().catch(() => {});
  }

  private async adopt(): Promise<void> {
    const mine = this.tables.snapshot();
    if (TABLES.some((t) => mine[t.table].length > 0)) {
      await this.pg.transaction(async (c) => {
        for (const t of TABLES)
          for (const r of mine[t.table] as Record<string, unknown>[])
            await c.query(
              `INSERT INTO ${t.table} (${t.cols.join(", ")}) VALUES (${t.cols.map((_, i) => `$${i + 1}`).join(", ")})
               ON CONFLICT DO NOTHING`,
              t.cols.map((k) => r[k]),
            );
      });
      this.log.info(
        Object.fromEntries(TABLES.map((t) => [t.table, mine[t.table].length])),
        "store: offered this node's machines, profiles, groups and BMCs to PostgreSQL (what it already had is kept)",
      );
    }
    this.tables.setMark(ADOPTED, new Date().toISOString());
  }

  private async listen(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.pg.settings.url,
      connectionTimeoutMillis: this.pg.settings.connectTimeoutMs,
      application_name: "kindling-replica",
      keepAlive: true,
    });
    client.on("notification", (msg) => {
      const n = msg.payload ? parseNotice(msg.payload) : undefined;
      if (n) this.noted(n.kind, n.key);
    });
    const lost = (err?: Error) => {
      if (this.client !== client) return;
      this.client = undefined;
      client.end().catch(() => {});
      if (this.stopped) return;
      this.log.warn({ err: err?.message }, "store: lost PostgreSQL's change notices; reconnecting");
      this.reconnect();
    };
    client.on("error", lost);
    client.on("end", () => lost());
    try {
      await client.connect();
      await client.query(`LISTEN ${STATE_CHANNEL}`);
    } catch (err) {
      await client.end().catch(() => {});
      throw err;
    }
    this.client = client;
    await this.resync();
    this.reconnectMs = RECONNECT_MIN_MS;
  }

  private reconnect(): void {
    const wait = this.reconnectMs;
    this.reconnectMs = Math.min(this.reconnectMs * 2, RECONNECT_MAX_MS);
    setTimeout(() => {
      if (this.stopped || this.client) return;
      this.listen().catch((err: unknown) => {
        if (!isConnectionError(err)) this.log.warn({ err }, "store: replica resync failed");
        this.reconnect();
      });
    }, wait).unref();
  }

  /** Copies PostgreSQL's full state into the replica (one read each, one local transaction). */
  private async resync(): Promise<void> {
    const read = async (t: (typeof TABLES)[number]) =>
      (await this.pg.query(`SELECT ${t.cols.join(", ")} FROM ${t.table}`)).rows;
    const [profiles, groups, machines, bmcs] = await Promise.all(TABLES.map(read));
    this.tables.replaceAll({ profiles, groups, machines, bmcs } as ReplicaState);
    this.needResync = false;
    this.syncedAt = new Date().toISOString();
  }

  private noted(kind: ChangeKind, key: string): void {
    if (this.stopped) return;
    const set = this.keys[kind];
    if (set.size >= MAX_PENDING_KEYS) this.needResync = true;
    else set.add(key);
    this.schedule(COALESCE_MS);
  }

  private schedule(ms: number): void {
    if (this.timer || this.fetching || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.fetching = this.drain();
    }, ms);
  }

  /** Fetches what the notices named until none are left; one fetch at a time keeps commit order. */
  private async drain(): Promise<void> {
    try {
      for (;;) {
        if (this.needResync) {
          for (const s of Object.values(this.keys)) s.clear();
          await this.resync();
          continue;
        }
        const wanted = TABLES.map((t) => [...this.keys[t.kind]]);
        if (wanted.every((w) => w.length === 0)) return;
        for (const s of Object.values(this.keys)) s.clear();
        this.tables.applyChanges(await this.fetch(wanted));
      }
    } catch (err) {
      // What was asked for is covered by the full copy the next try (or the listener's reconnect) makes.
      this.needResync = true;
      if (!isConnectionError(err)) this.log.warn({ err }, "store: replica refetch failed");
      this.fetching = undefined;
      this.schedule(RETRY_MS);
    } finally {
      this.fetching = undefined;
    }
  }

  /** The rows named (per table, in TABLES order) as PostgreSQL has them now; names it lacks are `gone`. */
  private async fetch(wanted: string[][]): Promise<ReplicaChanges> {
    const out: ReplicaChanges = {};
    await Promise.all(
      TABLES.map(async (t, i) => {
        const want = wanted[i]!;
        if (want.length === 0) return;
        const { rows } = await this.pg.query(`SELECT ${t.cols.join(", ")} FROM ${t.table} WHERE ${t.key} = ANY($1)`, [
          want,
        ]);
        const found = new Set(rows.map((r) => r[t.key]));
        (out as Record<string, unknown>)[t.table] = { rows, gone: want.filter((k) => !found.has(k)) };
      }),
    );
    return out;
  }
}
