import { join } from "node:path";
import type { Logger } from "../log.ts";
import { type Db, openDb } from "./db.ts";
import { EventStore } from "./events.ts";
import { GroupStore } from "./groups.ts";
import { HistoryWriter } from "./history-writer.ts";
import { DEFAULT_MAX_DISCOVERED, MachineStore } from "./machines.ts";
import type { PgDatabase } from "./pg/database.ts";
import { PgEventLog } from "./pg/events.ts";
import { Replica, type ReplicaStatus } from "./pg/replica.ts";
import { type Backlog, type Shipper, startShipper } from "./pg/shipper.ts";
import { PgStateWrites } from "./pg/state-writes.ts";
import { ProfileStore } from "./profiles.ts";
import { ReplicaTables } from "./replica-tables.ts";
import { writeGeneration } from "./statements.ts";
import { LocalWrites, type StateWrites } from "./writes.ts";

/**
 * All table modules over one SQLite connection: the node's own state, or, once `share` has run, its replica
 * of the state nodes share in PostgreSQL. Reads always come from the file; `writes` go where the truth is.
 */
export class Store {
  readonly machines: MachineStore;
  readonly profiles: ProfileStore;
  readonly groups: GroupStore;
  readonly events: EventStore;
  /** Boot requests' events and sightings, group-committed. */
  readonly history: HistoryWriter;
  /** Machines (through their owner), profiles and groups: the file's transactions, or PostgreSQL first. */
  writes: StateWrites;
  /** Set on a PostgreSQL node: where the truth is, the replica that follows it, the shipper that feeds it. */
  shared: { pg: PgDatabase; replica: Replica; shipper: Shipper; shipFirst: (mac: string) => Promise<void> } | undefined;

  constructor(
    readonly db: Db,
    private readonly opts: { maxDiscovered?: number; node?: string } = {},
  ) {
    this.machines = new MachineStore(db, opts.maxDiscovered);
    this.profiles = new ProfileStore(db);
    this.groups = new GroupStore(db);
    this.events = new EventStore(db, { node: opts.node });
    this.history = new HistoryWriter(db, this.events, this.machines);
    this.writes = new LocalWrites(this);
  }

  /**
   * Makes this file the node's replica of the state shared in PostgreSQL: copies it and hears every change
   * (pg/replica.ts), sends writes to PostgreSQL first (pg/state-writes.ts), ships what boot requests record
   * here (pg/shipper.ts) and reads the event log from there (pg/events.ts). Throws when PostgreSQL cannot be
   * reached. The returned function stops it all (before the pool closes): what is recorded by then is shipped
   * if PostgreSQL answers, else it waits in the file for the next start.
   */
  async share(pg: PgDatabase, log: Logger): Promise<() => Promise<void>> {
    const tables = new ReplicaTables(this.db);
    const replica = new Replica(pg, tables, log);
    await replica.start();
    const shipper = startShipper({
      sqlite: this.db,
      pg,
      node: this.opts.node ?? "kindling",
      maxDiscovered: this.opts.maxDiscovered ?? DEFAULT_MAX_DISCOVERED,
      log,
    });
    const shipFirst = async (mac: string) => {
      if (tables.pending(mac)) await shipper.flush();
    };
    this.writes = new PgStateWrites(pg, this, replica, shipFirst);
    this.history.shipSightings();
    this.events.share(new PgEventLog(pg, () => shipper.flush()));
    this.shared = { pg, replica, shipper, shipFirst };
    return async () => {
      this.history.flush();
      await shipper.stop();
      await replica.stop();
    };
  }

  /** On a PostgreSQL node: whether the replica hears other nodes' changes, and what waits to be shipped. */
  replication(): (ReplicaStatus & { unshipped: Backlog }) | undefined {
    return this.shared && { ...this.shared.replica.status(), unshipped: this.shared.shipper.backlog() };
  }

  static open(dataDir: string, opts: { maxDiscovered?: number; node?: string } = {}): Store {
    return new Store(openDb(join(dataDir, "kindling.db")), opts);
  }

  /** Runs `fn` in one transaction: all its writes or none. */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  /** Throws when the database cannot answer (`/healthz`). */
  ping(): void {
    this.db.prepare("SELECT 1").get();
  }

  /** Moves whenever something a boot answer depends on is written (statements.ts: writeGeneration). */
  writeGeneration(): number {
    return writeGeneration(this.db);
  }

  close(): void {
    if (!this.db.open) return;
    this.history.flush();
    this.db.close();
  }
}
