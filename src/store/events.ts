import type { Event, EventInput, EventSink } from "../model/event.ts";
import { type Db, nowIso } from "./db.ts";
import { DatabaseUnavailableError } from "./pg/database.ts";

/** An event as both engines store it (PostgreSQL's BIGINT id arrives as a string; ids fit a double). */
export interface EventRow {
  id: number | string;
  mac: string | null;
  kind: string;
  detail: string;
  at: string;
  node: string | null;
}

export const toEvent = (r: EventRow): Event => ({
  id: Number(r.id),
  mac: r.mac,
  kind: r.kind,
  detail: JSON.parse(r.detail),
  at: r.at,
  node: r.node,
});

export interface EventQuery {
  mac?: string;
  kind?: string;
  /** Only events with an id greater than this (live polling). */
  after?: number;
  /** Only events with an id smaller than this (the page of older events). */
  before?: number;
  limit?: number;
}

/** Page size of `list` without a limit, and the most one call returns. */
export const DEFAULT_EVENTS = 100;
export const MAX_EVENTS = 10_000;

/** Every node's events, where nodes sharing one PostgreSQL read them (pg/events.ts). */
export interface SharedEventLog {
  /** Same query, same order (newest first); ids are the shared log's. */
  list(q: EventQuery): Promise<Event[]>;
  /** Deletes every node's events recorded before `cutoff` (ISO time). */
  prune(cutoff: string): Promise<number>;
}

/** The row of `replication` that holds the id of the last local event the shared log has (pg/ship-events.ts). */
export const EVENTS_CURSOR = "events";

/**
 * Append-only boot and audit log. Every node writes its events here first (a boot request never waits on the
 * network). On a node sharing PostgreSQL, this file is the outbox the shipper empties into PostgreSQL, and
 * reads go to PostgreSQL, which holds every node's events.
 */
export class EventStore implements EventSink {
  private readonly insert;
  private readonly node: string | null;
  private listeners = new Set<(e: Event) => void>();
  private shared: SharedEventLog | undefined;

  /** @param opts.node the name recorded with each event (the `nodeName` setting). */
  constructor(
    private readonly db: Db,
    opts: { node?: string } = {},
  ) {
    this.node = opts.node ?? null;
    this.insert = db.prepare("INSERT INTO events (mac, kind, detail, at, node) VALUES (?, ?, ?, ?, ?)");
  }

  append(e: EventInput): Event {
    const at = nowIso();
    const detail = e.detail ?? {};
    const info = this.insert.run(e.mac ?? null, e.kind, JSON.stringify(detail), at, this.node);
    const event: Event = {
      id: Number(info.lastInsertRowid),
      mac: e.mac ?? null,
      kind: e.kind,
      detail,
      at,
      node: this.node,
    };
    for (const l of this.listeners) l(event);
    return event;
  }

  /** From now on `list` and `prune` work on `shared` (a node sharing PostgreSQL). */
  share(shared: SharedEventLog): void {
    this.shared = shared;
  }

  /** Newest first. */
  async list(q: EventQuery = {}): Promise<Event[]> {
    return this.shared ? this.shared.list(q) : this.local(q);
  }

  /**
   * `list`, except that while PostgreSQL cannot be reached it answers with what this node's file holds (its
   * own events not shipped yet, with the file's ids): a machine's page and the power service keep working
   * from the replica during an outage. The event log itself (`list`) says it is unavailable instead.
   */
  async listOrLocal(q: EventQuery = {}): Promise<Event[]> {
    try {
      return await this.list(q);
    } catch (err) {
      if (!(err instanceof DatabaseUnavailableError)) throw err;
      return this.local(q);
    }
  }

  private local(q: EventQuery): Event[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (q.mac) where.push("mac = ?"), args.push(q.mac);
    if (q.kind) where.push("kind = ?"), args.push(q.kind);
    if (q.after !== undefined) where.push("id > ?"), args.push(q.after);
    if (q.before !== undefined) where.push("id < ?"), args.push(q.before);
    const sql = `SELECT * FROM events ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY id DESC LIMIT ?`;
    return (this.db.prepare(sql).all(...args, Math.min(q.limit ?? DEFAULT_EVENTS, MAX_EVENTS)) as EventRow[]).map(
      toEvent,
    );
  }

  /**
   * Deletes events older than `days` (any host on the boot network can add TFTP/DHCP events). Shared: every
   * node's, in PostgreSQL (any node may run it; a second run finds nothing), and in this file every event
   * PostgreSQL has (the ids are AUTOINCREMENT, never reused, so the cursor stays behind every new event).
   */
  async prune(days: number, now = Date.now()): Promise<number> {
    const cutoff = new Date(now - days * 86_400_000).toISOString();
    if (!this.shared) return this.db.prepare("DELETE FROM events WHERE at < ?").run(cutoff).changes;
    const removed = await this.shared.prune(cutoff);
    this.db
      .prepare("DELETE FROM events WHERE id <= (SELECT CAST(value AS INTEGER) FROM replication WHERE name = ?)")
      .run(EVENTS_CURSOR);
    return removed;
  }

  /** Called synchronously after each of this node's appends (metrics). Returns an unsubscribe function. */
  subscribe(listener: (e: Event) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
