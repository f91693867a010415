/**
 * A node's sightings, from its file to PostgreSQL's machines. The boot path writes a sighting to the node's
 * replica and, in the same local transaction, names the machine in `pending_sightings` with a new `seq`
 * (history-writer.ts). Shipping sends what the replica's row knows from boot requests (identity, first and
 * last sighting) as one upsert that never takes a field an operator set; then the rows up to the shipped seq
 * leave the list, and a machine seen again meanwhile has a newer seq and stays.
 */
import type pg from "pg";
import type { Db } from "../db.ts";
import { changeNotice, STATE_CHANNEL } from "./changes.ts";
import { pgText } from "./text.ts";

export interface PendingSighting {
  mac: string;
  seq: number;
  /** The replica's row; null when it is gone (forgotten by the local cap before it was shipped). */
  uuid: string | null;
  serial: string | null;
  hostname: string | null;
  arch: string | null;
  first_seen: string | null;
  last_seen: string | null;
  gone: 0 | 1;
}

const IDENTITY = ["uuid", "serial", "hostname", "arch"] as const;

/** The oldest pending sightings, at most `limit`. */
export function unshippedSightings(db: Db, limit: number): PendingSighting[] {
  return db
    .prepare(
      `SELECT p.mac, p.seq, m.uuid, m.serial, m.hostname, m.arch, m.first_seen, m.last_seen, m.mac IS NULL gone
       FROM pending_sightings p LEFT JOIN machines m ON m.mac = p.mac ORDER BY p.seq LIMIT ?`,
    )
    .all(limit) as PendingSighting[];
}

export function unshippedSightingCount(db: Db): number {
  return (db.prepare("SELECT count(*) n FROM pending_sightings").get() as { n: number }).n;
}

/** The newest pending seq (0: none). */
export function lastSightingSeq(db: Db): number {
  return (db.prepare("SELECT coalesce(max(seq), 0) n FROM pending_sightings").get() as { n: number }).n;
}

/** Whether a sighting with a seq up to `seq` still waits. */
export function sightingWaits(db: Db, seq: number): boolean {
  return db.prepare("SELECT 1 FROM pending_sightings WHERE seq <= ? LIMIT 1").get(seq) !== undefined;
}

/** After PostgreSQL committed the sightings up to `seq`. */
export function dropShippedSightings(db: Db, seq: number): void {
  db.prepare("DELETE FROM pending_sightings WHERE seq <= ?").run(seq);
}

export interface SightingsShipped {
  /** Machines PostgreSQL did not have. */
  created: number;
  /** Known machines that learned an identity field or their first sighting. */
  learned: number;
  /** Untouched discovered machines forgotten to keep PostgreSQL under the cap. */
  evicted: string[];
}

/**
 * Upserts the sightings in the caller's transaction (which holds the shipping turn: shipper.ts) and notifies
 * every node of each machine that is new or learned something; a sighting that only moves `last_seen` is
 * not announced (replicas learn it with the machine's next change). Then keeps PostgreSQL's untouched
 * discovered machines under `maxDiscovered`, as each node's file does.
 */
export async function upsertSightings(
  c: pg.PoolClient,
  pending: PendingSighting[],
  maxDiscovered: number,
): Promise<SightingsShipped> {
  const rows = pending.filter((p) => !p.gone).sort((a, b) => (a.mac < b.mac ? -1 : a.mac > b.mac ? 1 : 0));
  if (!rows.length) return { created: 0, learned: 0, evicted: [] };
  const macs = rows.map((r) => r.mac);
  // Locked in MAC order (as the upsert below writes them), so that operator writes and shipments never wait
  // on each other in a circle; what they hold now is what the upsert will merge with.
  const { rows: before } = await c.query<Record<(typeof IDENTITY)[number] | "mac" | "first_seen", string | null>>(
    "SELECT mac, uuid, serial, hostname, arch, first_seen FROM machines WHERE mac = ANY($1::text[]) ORDER BY mac FOR UPDATE",
    [macs],
  );
  const had = new Map(before.map((b) => [b.mac!, b]));
  const now = new Date().toISOString();
  await c.query(
    `INSERT INTO machines AS m (mac, uuid, serial, hostname, arch, state, first_seen, last_seen, created_at, updated_at,
       state_changed_at, untouched)
     SELECT s.mac, s.uuid, s.serial, s.hostname, s.arch, 'discovered', s.first_seen, s.last_seen, s.at, s.at, s.at, 1
     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
       AS s(mac, uuid, serial, hostname, arch, first_seen, last_seen, at)
     ORDER BY s.mac
     ON CONFLICT (mac) DO UPDATE SET
       last_seen = GREATEST(m.last_seen COLLATE "C", excluded.last_seen),
       first_seen = LEAST(m.first_seen COLLATE "C", excluded.first_seen),
       uuid = COALESCE(m.uuid, excluded.uuid), serial = COALESCE(m.serial, excluded.serial),
       hostname = COALESCE(m.hostname, excluded.hostname), arch = COALESCE(m.arch, excluded.arch)`,
    [
      macs,
      ...IDENTITY.map((f) => rows.map((r) => pgText(r[f]))),
      rows.map((r) => r.first_seen),
      rows.map((r) => r.last_seen),
      rows.map((r) => r.first_seen ?? r.last_seen ?? now),
    ],
  );
  const created = rows.filter((r) => !had.has(r.mac)).map((r) => r.mac);
  const learned = rows
    .filter((r) => {
      const h = had.get(r.mac);
      return (
        h !== undefined &&
        ((h.first_seen === null && r.first_seen !== null) || IDENTITY.some((f) => h[f] === null && r[f] !== null))
      );
    })
    .map((r) => r.mac);
  const evicted = created.length ? await evictDiscovered(c, maxDiscovered, created) : [];
  await notify(c, [...created, ...learned, ...evicted]);
  return { created: created.length, learned: learned.length, evicted };
}

/**
 * Forgets the least recently seen untouched discovered machines beyond the cap, with their events; never one
 * of `keep` (this shipment's new machines). Shipments take turns, so two nodes do not both make the room.
 */
async function evictDiscovered(c: pg.PoolClient, maxDiscovered: number, keep: string[]): Promise<string[]> {
  const { rows } = await c.query<{ n: string }>("SELECT count(*) n FROM machines WHERE untouched = 1");
  const excess = Number(rows[0]!.n) - maxDiscovered;
  if (excess <= 0) return [];
  const { rows: gone } = await c.query<{ mac: string }>(
    `DELETE FROM machines WHERE mac IN (
       SELECT mac FROM machines WHERE untouched = 1 AND mac <> ALL($1::text[]) ORDER BY last_seen, mac LIMIT $2)
     AND untouched = 1
     RETURNING mac`,
    [keep, excess],
  );
  const macs = gone.map((g) => g.mac);
  if (macs.length) await c.query("DELETE FROM events WHERE mac = ANY($1::text[])", [macs]);
  return macs;
}

async function notify(c: pg.PoolClient, macs: string[]): Promise<void> {
  if (!macs.length) return;
  await c.query("SELECT pg_notify($1, n) FROM unnest($2::text[]) AS n", [
    STATE_CHANNEL,
    macs.map((m) => changeNotice("m", m)),
  ]);
}
