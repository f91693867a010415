import pg from "pg";
import type { Logger } from "../../log.ts";
import {
  GROUP_COLUMNS,
  type GroupRow,
  MACHINE_COLUMNS,
  type MachineRow,
  PROFILE_COLUMNS,
  type ProfileRow,
  type ReplicaChanges,
  type ReplicaTables,
} from "../replica-tables.ts";
import { parseNotice, STATE_CHANNEL } from "./changes.ts";
import { isConnectionError, type PgDatabase } from "./database.ts";
import type { ReplicaSink } from "./state-writes.ts";

/** Keys waiting to be refetched past which one full resync is cheaper (and the memory stays bounded). */
const MAX_PENDING_KEYS = 10_000;
/** Notices arriving within this long are fetched together. */
const COALESCE_MS = 5;
/** After a failed refetch, the wait before the next try (the listener's reconnect may resync sooner). */
const RETRY_MS = 1_000;
const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 15_000;
/** The replication row that says this file's own state was offered to PostgreSQL once. */
const ADOPTED = "replica.adopted";

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
  private readonly keys = { m: new Set<string>(), p: new Set<string>(), g: new Set<string>() };
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
    for (const r of changes.machines?.rows ?? []) this.noted("m", String(r.mac));
    for (const r of changes.profiles?.rows ?? []) this.noted("p", String(r.name));
    for (const r of changes.groups?.rows ?? []) this.noted("g", String(r.name));
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
    const n = mine.machines.length + mine.profiles.length + mine.groups.length;
    if (n > 0) {
      await this.pg.transaction(async (c) => {
        const insert = async (table: string, cols: readonly string[], rows: Record<string, unknown>[]) => {
          for (const r of rows)
            await c.query(
              `INSERT INTO ${table} (${cols.join(", ")}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(", ")})
               ON CONFLICT DO NOTHING`,
              cols.map((k) => r[k]),
            );
        };
        await insert("profiles", PROFILE_COLUMNS, mine.profiles);
        await insert("groups", GROUP_COLUMNS, mine.groups);
        await insert("machines", MACHINE_COLUMNS, mine.machines);
      });
      this.log.info(
        { machines: mine.machines.length, profiles: mine.profiles.length, groups: mine.groups.length },
        "store: offered this node's machines, profiles and groups to PostgreSQL (what it already had is kept)",
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
    const read = async <R>(table: string, cols: readonly string[]) =>
      (await this.pg.query<R & pg.QueryResultRow>(`SELECT ${cols.join(", ")} FROM ${table}`)).rows;
    const [machines, profiles, groups] = await Promise.all([
      read<MachineRow>("machines", MACHINE_COLUMNS),
      read<ProfileRow>("profiles", PROFILE_COLUMNS),
      read<GroupRow>("groups", GROUP_COLUMNS),
    ]);
    this.tables.replaceAll({ machines, profiles, groups });
    this.needResync = false;
    this.syncedAt = new Date().toISOString();
  }

  private noted(kind: "m" | "p" | "g", key: string): void {
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
        const m = [...this.keys.m];
        const p = [...this.keys.p];
        const g = [...this.keys.g];
        if (m.length + p.length + g.length === 0) return;
        for (const s of Object.values(this.keys)) s.clear();
        this.tables.applyChanges(await this.fetch(m, p, g));
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

  private async fetch(macs: string[], profiles: string[], groups: string[]): Promise<ReplicaChanges> {
    const rows = async <R extends Record<string, unknown>>(
      table: string,
      cols: readonly string[],
      key: string,
      want: string[],
    ): Promise<{ rows: R[]; gone: string[] } | undefined> => {
      if (want.length === 0) return undefined;
      const { rows } = await this.pg.query<R & pg.QueryResultRow>(
        `SELECT ${cols.join(", ")} FROM ${table} WHERE ${key} = ANY($1)`,
        [want],
      );
      const found = new Set(rows.map((r) => r[key]));
      return { rows, gone: want.filter((k) => !found.has(k)) };
    };
    const [m, p, g] = await Promise.all([
      rows<MachineRow>("machines", MACHINE_COLUMNS, "mac", macs),
      rows<ProfileRow>("profiles", PROFILE_COLUMNS, "name", profiles),
      rows<GroupRow>("groups", GROUP_COLUMNS, "name", groups),
    ]);
    return { ...(m && { machines: m }), ...(p && { profiles: p }), ...(g && { groups: g }) };
  }
}
