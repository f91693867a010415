/**
 * Every node's events, as nodes sharing one PostgreSQL read them. Each node writes its events to its own
 * file first and its shipper copies them here (ship-events.ts); the ids here are PostgreSQL's, and they
 * grow in commit order (shipments take turns), so `after=<id>` polling misses nothing another node ships.
 */
import type { Event } from "../../model/event.ts";
import { DEFAULT_EVENTS, type EventQuery, type EventRow, MAX_EVENTS, type SharedEventLog, toEvent } from "../events.ts";
import type { PgDatabase } from "./database.ts";

/** Rows one prune statement deletes at most. */
const PRUNE_SLICE = 10_000;

export class PgEventLog implements SharedEventLog {
  /**
   * @param beforeRead run before each list: this node's shipper sends what it has, so a caller reads its own
   *   node's events as it would from the file (`flush` of shipper.ts).
   */
  constructor(
    private readonly db: PgDatabase,
    private readonly beforeRead: () => Promise<void> = async () => {},
  ) {}

  async list(q: EventQuery): Promise<Event[]> {
    // A shipment that fails leaves the read to say what is wrong (unreachable), or to show what is there.
    await this.beforeRead().catch(() => {});
    const where: string[] = [];
    const args: unknown[] = [];
    const param = (v: unknown) => (args.push(v), `$${args.length}`);
    if (q.mac) where.push(`mac = ${param(q.mac)}`);
    if (q.kind) where.push(`kind = ${param(q.kind)}`);
    if (q.after !== undefined) where.push(`id > ${param(q.after)}`);
    if (q.before !== undefined) where.push(`id < ${param(q.before)}`);
    const limit = param(Math.min(q.limit ?? DEFAULT_EVENTS, MAX_EVENTS));
    const { rows } = await this.db.query<EventRow>(
      `SELECT id, mac, kind, detail, at, node FROM events ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
       ORDER BY id DESC LIMIT ${limit}`,
      args,
    );
    return rows.map(toEvent);
  }

  /** In slices, so no statement runs into the statement timeout however much a retention change frees. */
  async prune(cutoff: string): Promise<number> {
    let removed = 0;
    for (;;) {
      const { rowCount } = await this.db.query(
        "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE at < $1 LIMIT $2)",
        [cutoff, PRUNE_SLICE],
      );
      removed += rowCount ?? 0;
      if ((rowCount ?? 0) < PRUNE_SLICE) return removed;
    }
  }
}
