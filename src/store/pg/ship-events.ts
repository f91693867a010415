/**
 * A node's events, from its own file to PostgreSQL. The file's ids are the order and the shipping cursor
 * (`replication` row `events`: the last id PostgreSQL has); each event arrives as (node, origin_id = its id
 * in the file), which PostgreSQL keeps unique, so a shipment sent again after a crash between PostgreSQL's
 * commit and the cursor's is one row, not two.
 */
import type pg from "pg";
import type { Db } from "../db.ts";
import { EVENTS_CURSOR, type EventRow } from "../events.ts";
import { pgText } from "./text.ts";

/** An event in the node's file: its id there is a number. */
export type LocalEvent = EventRow & { id: number };

export function eventsCursor(db: Db): number {
  const row = db.prepare("SELECT value FROM replication WHERE name = ?").get(EVENTS_CURSOR) as
    | { value: string }
    | undefined;
  return row ? Number(row.value) : 0;
}

/** The oldest events PostgreSQL does not have yet, at most `limit`. */
export function unshippedEvents(db: Db, limit: number): LocalEvent[] {
  return db
    .prepare("SELECT id, mac, kind, detail, at, node FROM events WHERE id > ? ORDER BY id LIMIT ?")
    .all(eventsCursor(db), limit) as LocalEvent[];
}

export function unshippedEventCount(db: Db): number {
  return (db.prepare("SELECT count(*) n FROM events WHERE id > ?").get(eventsCursor(db)) as { n: number }).n;
}

/** Whether an event up to `id` still waits. */
export function eventWaits(db: Db, id: number): boolean {
  return db.prepare("SELECT 1 FROM events WHERE id > ? AND id <= ? LIMIT 1").get(eventsCursor(db), id) !== undefined;
}

/** The newest event in the file (0: none). */
export function lastEventId(db: Db): number {
  return (db.prepare("SELECT coalesce(max(id), 0) n FROM events").get() as { n: number }).n;
}

/** After PostgreSQL committed the events up to `id`. */
export function moveEventsCursor(db: Db, id: number): void {
  db.prepare(
    "INSERT INTO replication (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
  ).run(EVENTS_CURSOR, String(id));
}

/**
 * Inserts the events in the caller's transaction, which holds the shipping turn (shipper.ts), so the ids
 * PostgreSQL gives them grow in commit order. Returns how many PostgreSQL already held as a *different*
 * event under the same (node, origin_id): two nodes configured with one name, whose events collide.
 */
export async function insertEvents(c: pg.PoolClient, node: string, events: LocalEvent[]): Promise<number> {
  const nodes = events.map((e) => pgText(e.node ?? node));
  const { rows } = await c.query<{ origin_id: string }>(
    `INSERT INTO events (node, origin_id, mac, kind, detail, at)
     SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[])
     ON CONFLICT (node, origin_id) DO NOTHING
     RETURNING origin_id`,
    [
      nodes,
      events.map((e) => e.id),
      events.map((e) => pgText(e.mac)),
      events.map((e) => pgText(e.kind)),
      events.map((e) => pgText(e.detail)),
      events.map((e) => e.at),
    ],
  );
  if (rows.length === events.length) return 0;
  // Held already: the same event shipped before the cursor moved (a crash or a lost answer), or a collision.
  const inserted = new Set(rows.map((r) => Number(r.origin_id)));
  const held = events.filter((e) => !inserted.has(e.id));
  const { rows: theirs } = await c.query<{ node: string; origin_id: string; kind: string; at: string }>(
    `SELECT node, origin_id, kind, at FROM events e
     JOIN unnest($1::text[], $2::bigint[]) AS h(node, origin_id) USING (node, origin_id)`,
    [held.map((e) => pgText(e.node ?? node)), held.map((e) => e.id)],
  );
  const same = new Set(theirs.map((t) => `${t.node} ${t.origin_id} ${t.kind} ${t.at}`));
  return held.filter((e) => !same.has(`${pgText(e.node ?? node)} ${e.id} ${pgText(e.kind)} ${e.at}`)).length;
}
