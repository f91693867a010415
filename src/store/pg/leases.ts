/**
 * The LeaseRepository of nodes sharing one PostgreSQL database. The database decides who gets an address:
 * the (subnet, ip) primary key admits one row per address, and every write is one INSERT ... ON CONFLICT DO
 * UPDATE whose WHERE is the takeable() rule, so when two nodes write the same address at once PostgreSQL
 * locks the row, re-checks the rule against the winner's committed row and leaves the loser with no row
 * returned. Nothing reads first and writes after: there is no gap for another node to slip into.
 */
import {
  type AllocateRequest,
  type AllocateResult,
  type BindRequest,
  type BindResult,
  type DeclineRequest,
  type DeclineResult,
  type Lease,
  type LeaseChanges,
  type LeaseRepository,
  type LeaseState,
  takeable,
} from "../lease-repository.ts";
import { type BatchItem, BindBatcher } from "./bind-batch.ts";
import type { PgDatabase } from "./database.ts";
import { pgText } from "./text.ts";

/** A pool offers a window of candidates, not its whole range: one statement carries at most this many. */
export const MAX_CANDIDATES = 256;
/** Rounds of allocate() lost to other nodes before it gives up (each round excludes what it lost to). */
const MAX_ALLOCATE_ROUNDS = 8;
/** Reservations are re-read at most this often: an operator's change applies within that. */
const RESERVATION_TTL_MS = 1000;

const COLUMNS = "subnet, ip, mac, state, expires_at, hostname, updated_at, txid::text AS txid";

// takeable() in SQL: `l` is the row there, excluded the row being written, $now the writer's clock.
const TAKEABLE = (now: string) =>
  `CASE WHEN l.state = 'declined' THEN l.expires_at <= ${now}
        ELSE l.mac = excluded.mac OR l.state = 'released' OR l.expires_at <= ${now} END`;

const UPSERT_TAIL = (now: string) => `
  ON CONFLICT (subnet, ip) DO UPDATE SET mac = excluded.mac, state = excluded.state,
    expires_at = excluded.expires_at, hostname = excluded.hostname, updated_at = excluded.updated_at,
    txid = pg_current_xact_id()
  WHERE ${TAKEABLE(now)}
  RETURNING ${COLUMNS}`;

// Named statements are prepared once per connection and reused: no parse or plan per packet.
const Q = {
  bindMany: {
    name: "kindling_lease_bind_many",
    // One row per address (the batcher sees to it), written in key order so that concurrent batches take
    // their row locks in the same order and cannot deadlock one another.
    text: `INSERT INTO leases AS l (subnet, ip, mac, state, expires_at, hostname, updated_at)
           SELECT b.subnet, b.ip, b.mac, 'bound', b.expires_at, b.hostname, b.updated_at
           FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::bigint[])
             AS b(subnet, ip, mac, expires_at, hostname, updated_at)
           ORDER BY b.subnet, b.ip
           ${UPSERT_TAIL("excluded.updated_at")}`,
  },
  write: {
    name: "kindling_lease_write",
    text: `INSERT INTO leases AS l (subnet, ip, mac, state, expires_at, hostname, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7) ${UPSERT_TAIL("$7")}`,
  },
  allocate: {
    name: "kindling_lease_allocate",
    // The first candidate that looks takeable is written with the same guarded upsert: if another node took
    // it in between, the WHERE fails on its row and nothing is returned.
    text: `WITH pick AS (
             SELECT c.ip FROM unnest($2::text[]) WITH ORDINALITY AS c(ip, o)
             LEFT JOIN leases cur ON cur.subnet = $1 AND cur.ip = c.ip
             WHERE cur.ip IS NULL
                OR CASE WHEN cur.state = 'declined' THEN cur.expires_at <= $6
                        ELSE cur.mac = $3 OR cur.state = 'released' OR cur.expires_at <= $6 END
             ORDER BY c.o LIMIT 1)
           INSERT INTO leases AS l (subnet, ip, mac, state, expires_at, hostname, updated_at)
           SELECT $1, pick.ip, $3, 'bound', $4, $5, $6 FROM pick ${UPSERT_TAIL("$6")}`,
  },
  get: { name: "kindling_lease_get", text: `SELECT ${COLUMNS} FROM leases WHERE subnet = $1 AND ip = $2` },
  getMany: {
    name: "kindling_lease_get_many",
    text: `SELECT ${COLUMNS} FROM leases WHERE subnet = $1 AND ip = ANY($2::text[])`,
  },
  release: {
    name: "kindling_lease_release",
    text: `UPDATE leases SET state = 'released', expires_at = $4, updated_at = $4, txid = pg_current_xact_id()
           WHERE subnet = $1 AND ip = $2 AND mac = $3 AND state = 'bound' RETURNING ip`,
  },
  boundIp: {
    name: "kindling_lease_bound_ip",
    text: `SELECT ip FROM leases WHERE mac = $1 AND state = 'bound' AND expires_at > $2
           ORDER BY updated_at DESC LIMIT 1`,
  },
} as const;

interface Row {
  subnet: string;
  ip: string;
  mac: string;
  state: string;
  // BIGINT arrives as a string (node-postgres does not guess at precision); unix ms fit a double exactly.
  expires_at: string;
  hostname: string | null;
  updated_at: string;
  txid: string;
}

const toLease = (r: Row): Lease => ({
  ip: r.ip,
  mac: r.mac,
  state: r.state as LeaseState,
  expiresAt: Number(r.expires_at),
  hostname: r.hostname,
  updatedAt: Number(r.updated_at),
});

export class PgLeaseRepository implements LeaseRepository {
  readonly engine = "postgres";
  private reservationCache: { at: number; map: Map<string, string> } | undefined;
  private readonly binds = new BindBatcher<BindRequest, BindResult>((batch) => this.bindBatch(batch));

  constructor(private readonly db: PgDatabase) {}

  /** Joins the binds of this event-loop turn in one statement and one commit (bind-batch.ts). */
  bind(req: BindRequest): Promise<BindResult> {
    return this.binds.submit(`${req.subnet} ${req.ip}`, req);
  }

  private async bindBatch(batch: BatchItem<BindRequest, BindResult>[]): Promise<void> {
    const reqs = batch.map((b) => b.req);
    const params = [
      reqs.map((r) => r.subnet),
      reqs.map((r) => r.ip),
      reqs.map((r) => r.mac),
      reqs.map((r) => r.now + r.leaseMs),
      reqs.map((r) => pgText(r.hostname)),
      reqs.map((r) => r.now),
    ];
    let result: { rows: Row[] };
    try {
      result = await this.db.query<Row>(Q.bindMany, params);
    } catch (err) {
      // A decline ending other quarantines locks rows in its own order; PostgreSQL breaks such a cycle by
      // failing one side, which is safe to run again.
      if ((err as { code?: string }).code !== "40P01") throw err;
      result = await this.db.query<Row>(Q.bindMany, params);
    }
    const won = new Map(result.rows.map((r) => [`${r.subnet} ${r.ip}`, r]));
    // Winners are committed: they are answered before anything else can fail.
    const lost: typeof batch = [];
    for (const b of batch) {
      const row = won.get(b.key);
      if (row) b.resolve({ ok: true, lease: toLease(row) });
      else lost.push(b);
    }
    const holders = new Map<string, Lease>();
    try {
      for (const subnet of new Set(lost.map((b) => b.req.subnet))) {
        const ips = lost.filter((b) => b.req.subnet === subnet).map((b) => b.req.ip);
        const { rows } = await this.db.query<Row>(Q.getMany, [subnet, ips]);
        for (const r of rows) holders.set(`${r.subnet} ${r.ip}`, toLease(r));
      }
    } finally {
      // Who holds it is for the caller's cache; a refusal stands without it.
      for (const b of lost) b.resolve({ ok: false, holder: holders.get(b.key) });
    }
  }

  async allocate(req: AllocateRequest): Promise<AllocateResult> {
    let remaining = [...new Set(req.candidates)].slice(0, MAX_CANDIDATES);
    const taken = new Map<string, Lease>();
    for (let round = 0; round < MAX_ALLOCATE_ROUNDS && remaining.length; round++) {
      const { rows } = await this.db.query<Row>(Q.allocate, [
        req.subnet,
        remaining,
        req.mac,
        req.now + req.leaseMs,
        pgText(req.hostname),
        req.now,
      ]);
      if (rows[0]) return { ok: true, lease: toLease(rows[0]) };
      // Nothing takeable, or another node won the one picked: see which, and try the rest.
      const held = await this.db.query<Row>(Q.getMany, [req.subnet, remaining]);
      for (const r of held.rows) {
        const l = toLease(r);
        if (!takeable(l, req.mac, req.now)) taken.set(l.ip, l);
      }
      remaining = remaining.filter((ip) => !taken.has(ip));
    }
    return { ok: false, taken: [...taken.values()] };
  }

  async release(subnet: string, mac: string, ip: string, now: number): Promise<boolean> {
    const { rowCount } = await this.db.query(Q.release, [subnet, ip, mac, now]);
    return (rowCount ?? 0) > 0;
  }

  async decline(req: DeclineRequest): Promise<DeclineResult> {
    const { subnet, now } = req;
    const result = await this.db.transaction(async (c): Promise<DeclineResult> => {
      // Declines of one subnet take turns across nodes, so the quarantine count they check stays true.
      await c.query("SELECT pg_advisory_xact_lock(hashtext('kindling.decline'), hashtext($1))", [subnet]);
      const { rows } = await c.query<Row>(Q.write, [
        subnet,
        req.ip,
        req.mac,
        "declined",
        now + req.quarantineMs,
        null,
        now,
      ]);
      if (!rows[0]) return { ok: false, holder: undefined };
      const live = await c.query<{ ip: string }>(
        `SELECT ip FROM leases WHERE subnet = $1 AND state = 'declined' AND expires_at > $2 AND ip <> $3
         ORDER BY updated_at, ip`,
        [subnet, now, req.ip],
      );
      const excess = live.rows.length + 1 - req.maxQuarantined;
      let released: string[] = [];
      if (excess > 0) {
        const ended = await c.query<{ ip: string }>(
          `UPDATE leases SET mac = '', state = 'released', expires_at = $3, updated_at = $3, txid = pg_current_xact_id()
           WHERE subnet = $1 AND ip = ANY($2::text[]) RETURNING ip`,
          [subnet, live.rows.slice(0, excess).map((r) => r.ip), now],
        );
        released = ended.rows.map((r) => r.ip);
      }
      return { ok: true, lease: toLease(rows[0]), released };
    });
    if (result.ok) return result;
    return { ok: false, holder: await this.get(subnet, req.ip) };
  }

  async reclaim(now: number, graceMs: number, limit: number): Promise<number> {
    // The outer condition is checked again on the row's newest version: a lease renewed meanwhile stays.
    const { rowCount } = await this.db.query(
      `DELETE FROM leases WHERE (subnet, ip) IN (SELECT subnet, ip FROM leases WHERE expires_at <= $1 LIMIT $2)
         AND expires_at <= $1`,
      [now - graceMs, limit],
    );
    return rowCount ?? 0;
  }

  async get(subnet: string, ip: string): Promise<Lease | undefined> {
    const { rows } = await this.db.query<Row>(Q.get, [subnet, ip]);
    return rows[0] && toLease(rows[0]);
  }

  async all(): Promise<Lease[]> {
    const { rows } = await this.db.query<Row>(`SELECT ${COLUMNS} FROM leases ORDER BY updated_at`);
    return rows.map(toLease);
  }

  /**
   * Rows written by transactions in [cursor, horizon), where the horizon is the oldest transaction still
   * running: everything below it has finished, so a window never misses a write that commits late, and
   * the next call starts at the horizon. A row written again later comes again. A long transaction holds
   * the horizon back (statements are bounded by statementTimeoutMs). At most `limit` rows, cut between
   * transactions, unless one transaction alone wrote more.
   */
  async changes(cursor: number, limit: number): Promise<LeaseChanges> {
    const { rows } = await this.db.query<Row & { horizon: string }>(
      `WITH h AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS x)
       SELECT h.x::text AS horizon, l.* FROM h LEFT JOIN LATERAL (
         SELECT ${COLUMNS} FROM leases WHERE txid >= $1::text::xid8 AND txid < h.x ORDER BY txid LIMIT $2
       ) l ON true`,
      [String(cursor), limit + 1],
    );
    const found = rows.filter((r) => r.ip !== null);
    const out = (list: Row[], next: number): LeaseChanges => ({
      leases: list.map((r) => ({ ...toLease(r), subnet: r.subnet })),
      cursor: next,
    });
    if (found.length <= limit) return out(found, Number(rows[0]!.horizon));
    // The last transaction in the page may have more rows beyond it: it comes whole in the next call.
    const last = found[limit]!.txid;
    const whole = found.filter((r) => r.txid !== last);
    if (whole.length) return out(whole, Number(last));
    const { rows: one } = await this.db.query<Row>(`SELECT ${COLUMNS} FROM leases WHERE txid = $1::text::xid8`, [last]);
    return out(one, Number(last) + 1);
  }

  async cursor(): Promise<number> {
    const { rows } = await this.db.query<{ x: string }>("SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS x");
    return Number(rows[0]!.x);
  }

  async reservations(): Promise<Map<string, string>> {
    const now = Date.now();
    if (!this.reservationCache || now - this.reservationCache.at >= RESERVATION_TTL_MS) {
      const { rows } = await this.db.query<{ ip: string; mac: string }>(
        "SELECT ip, mac FROM machines WHERE ip IS NOT NULL",
      );
      this.reservationCache = { at: now, map: new Map(rows.map((r) => [r.ip, r.mac])) };
    }
    return this.reservationCache.map;
  }

  async boundIp(mac: string, now: number): Promise<string | undefined> {
    const { rows } = await this.db.query<{ ip: string }>(Q.boundIp, [mac, now]);
    return rows[0]?.ip;
  }

  /** The connection pool is the caller's (other stores share it); nothing is queued here. */
  async close(): Promise<void> {}
}
