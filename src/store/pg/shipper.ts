/**
 * On a node sharing PostgreSQL, what boot requests write (events, sightings) is committed to the node's own
 * file first, as on a single node: a boot answer never waits on the network, and a PostgreSQL outage loses
 * nothing, because the file is the outbox. The shipper sends it on: every SHIP_MS, a batch of events
 * (ship-events.ts) and one of sightings (ship-sightings.ts) in one PostgreSQL transaction; then, once that
 * committed, the local bookkeeping moves (cursor, pending rows). A crash in between sends the batch again,
 * which PostgreSQL takes as a no-op.
 */
import type { Logger } from "../../log.ts";
import type { Db } from "../db.ts";
import { DatabaseUnavailableError, isConnectionError, type PgDatabase } from "./database.ts";
import {
  eventWaits,
  insertEvents,
  lastEventId,
  moveEventsCursor,
  unshippedEventCount,
  unshippedEvents,
} from "./ship-events.ts";
import {
  dropShippedSightings,
  lastSightingSeq,
  sightingWaits,
  unshippedSightingCount,
  unshippedSightings,
  upsertSightings,
} from "./ship-sightings.ts";

/** How often a node ships: what other nodes show of its events and sightings lags by about this much. */
export const SHIP_MS = 250;
/** Events, and sightings, per shipment: a backlog after an outage goes in transactions of bounded size. */
export const SHIP_BATCH = 500;
/** After a shipment PostgreSQL refused (not an outage: the pool's own probe covers that), waits grow to this. */
const RETRY_MAX_MS = 30_000;

export interface ShipperOptions {
  sqlite: Db;
  pg: PgDatabase;
  /** This node's name (`nodeName`): PostgreSQL keeps each node's events apart by it. */
  node: string;
  /** `boot.maxDiscovered`, held in PostgreSQL as in each file. */
  maxDiscovered: number;
  log: Logger;
  intervalMs?: number;
  batch?: number;
}

/** What this node recorded that PostgreSQL does not have yet. */
export interface Backlog {
  events: number;
  sightings: number;
}

export interface Shipper {
  /** Ships everything recorded before the call; rejects when PostgreSQL cannot take it now. */
  flush(): Promise<void>;
  /** Stops the timer and ships what is left if PostgreSQL answers; the rest waits in the file for the next start. */
  stop(): Promise<void>;
  backlog(): Backlog;
}

export function startShipper(o: ShipperOptions): Shipper {
  const s = new Shipping(o);
  s.start();
  return s;
}

class Shipping implements Shipper {
  private readonly intervalMs: number;
  private readonly batch: number;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** The shipment running now; resolves whether a full batch went (more may be waiting). */
  private running: Promise<boolean> | undefined;
  /** Set from the first failed shipment until one succeeds: one log line each way per outage. */
  private failing: { since: number; retryMs: number } | undefined;
  private warnedCollision = false;

  constructor(private readonly o: ShipperOptions) {
    this.intervalMs = o.intervalMs ?? SHIP_MS;
    this.batch = o.batch ?? SHIP_BATCH;
  }

  start(): void {
    this.schedule(this.intervalMs);
  }

  async flush(): Promise<void> {
    const db = this.o.sqlite;
    const lastEvent = lastEventId(db);
    const lastSeq = lastSightingSeq(db);
    while (eventWaits(db, lastEvent) || sightingWaits(db, lastSeq)) await this.ship();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running?.catch(() => {});
    // A file already closed (a failed start, a crash being handled) has nothing more to give.
    if (!this.o.pg.available || !this.o.sqlite.open) return;
    await this.flush().catch((err) =>
      this.o.log.warn(
        { err, ...(this.o.sqlite.open ? this.backlog() : {}) },
        "ship: not everything reached PostgreSQL; the rest goes at the next start",
      ),
    );
  }

  backlog(): Backlog {
    return { events: unshippedEventCount(this.o.sqlite), sightings: unshippedSightingCount(this.o.sqlite) };
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), ms);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    // While the pool's probe waits for PostgreSQL to come back, there is nothing to try.
    if (!this.o.pg.available) {
      this.failed(new DatabaseUnavailableError(this.o.pg.lastError ?? "PostgreSQL unreachable"));
      return this.schedule(this.intervalMs);
    }
    try {
      const more = await this.ship();
      this.recovered();
      this.schedule(more ? 0 : this.intervalMs);
    } catch (err) {
      this.schedule(this.failed(err));
    }
  }

  /** One shipment at a time; a caller arriving meanwhile shares the running one. */
  private ship(): Promise<boolean> {
    this.running ??= this.shipBatch().finally(() => (this.running = undefined));
    return this.running;
  }

  private async shipBatch(): Promise<boolean> {
    const { sqlite, pg, node, maxDiscovered, log } = this.o;
    const events = unshippedEvents(sqlite, this.batch);
    const sightings = unshippedSightings(sqlite, this.batch);
    if (!events.length && !sightings.length) return false;
    const collisions = await pg.transaction(async (c) => {
      // Shipments of all nodes take turns: event ids are then given in commit order (a reader polling with
      // `after` misses none), and the discovered cap is counted by one node at a time.
      await c.query("SELECT pg_advisory_xact_lock(hashtext('kindling.ship'))");
      if (sightings.length) await upsertSightings(c, sightings, maxDiscovered);
      return events.length ? insertEvents(c, node, events) : 0;
    });
    sqlite.transaction(() => {
      if (events.length) moveEventsCursor(sqlite, events.at(-1)!.id);
      if (sightings.length) dropShippedSightings(sqlite, sightings.at(-1)!.seq);
    })();
    if (collisions && !this.warnedCollision) {
      this.warnedCollision = true;
      log.error(
        { node, collisions },
        "ship: PostgreSQL holds other events under this node's name; those of this node were not shipped: give every node its own nodeName",
      );
    }
    return events.length === this.batch || sightings.length === this.batch;
  }

  /** Logs the first failure of a run of them; returns how long to wait before the next try. */
  private failed(err: unknown): number {
    const outage = isConnectionError(err);
    if (!this.failing) {
      this.failing = { since: Date.now(), retryMs: this.intervalMs };
      const backlog = this.backlog();
      if (outage)
        this.o.log.warn(
          { ...backlog },
          "ship: PostgreSQL unreachable; events and sightings wait in this node's file until it answers",
        );
      else this.o.log.error({ err, ...backlog }, "ship: PostgreSQL refused a shipment; retrying with backoff");
    }
    // An outage is retried on the pool's probe (tick checks `available`); a refusal backs off here.
    if (outage) return this.intervalMs;
    this.failing.retryMs = Math.min(this.failing.retryMs * 2, RETRY_MAX_MS);
    return this.failing.retryMs;
  }

  private recovered(): void {
    if (!this.failing) return;
    this.o.log.info(
      { afterMs: Date.now() - this.failing.since, ...this.backlog() },
      "ship: shipping to PostgreSQL again",
    );
    this.failing = undefined;
  }
}
