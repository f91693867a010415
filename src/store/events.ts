import type { Event, EventInput, EventSink } from "../model/event.ts";
import { type Db, nowIso } from "./db.ts";

interface Row {
  id: number;
  mac: string | null;
  kind: string;
  detail: string;
  at: string;
}

const toEvent = (r: Row): Event => ({ id: r.id, mac: r.mac, kind: r.kind, detail: JSON.parse(r.detail), at: r.at });

export interface EventQuery {
  mac?: string;
  kind?: string;
  /** Only events with an id greater than this (live polling). */
  after?: number;
  /** Only events with an id smaller than this (the page of older events). */
  before?: number;
  limit?: number;
}

/** Append-only boot and audit log. */
export class EventStore implements EventSink {
  private readonly insert;
  private listeners = new Set<(e: Event) => void>();

  constructor(private readonly db: Db) {
    this.insert = db.prepare("INSERT INTO events (mac, kind, detail, at) VALUES (?, ?, ?, ?)");
  }

  append(e: EventInput): Event {
    const at = nowIso();
    const detail = e.detail ?? {};
    const info = this.insert.run(e.mac ?? null, e.kind, JSON.stringify(detail), at);
    const event: Event = { id: Number(info.lastInsertRowid), mac: e.mac ?? null, kind: e.kind, detail, at };
    for (const l of this.listeners) l(event);
    return event;
  }

  /** Newest first. */
  list(q: EventQuery = {}): Event[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (q.mac) where.push("mac = ?"), args.push(q.mac);
    if (q.kind) where.push("kind = ?"), args.push(q.kind);
    if (q.after !== undefined) where.push("id > ?"), args.push(q.after);
    if (q.before !== undefined) where.push("id < ?"), args.push(q.before);
    const sql = `SELECT * FROM events ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY id DESC LIMIT ?`;
    return (this.db.prepare(sql).all(...args, Math.min(q.limit ?? 100, 10_000)) as Row[]).map(toEvent);
  }

  /** Deletes events older than `days` (any host on the boot network can add TFTP/DHCP events). */
  prune(days: number, now = Date.now()): number {
    const cutoff = new Date(now - days * 86_400_000).toISOString();
    return this.db.prepare("DELETE FROM events WHERE at < ?").run(cutoff).changes;
  }

  /** Called synchronously after each append (metrics, live UI). Returns an unsubscribe function. */
  subscribe(listener: (e: Event) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
