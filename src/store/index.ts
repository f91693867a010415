import { join } from "node:path";
import { type Db, openDb } from "./db.ts";
import { EventStore } from "./events.ts";
import { GroupStore } from "./groups.ts";
import { HistoryWriter } from "./history-writer.ts";
import { MachineStore } from "./machines.ts";
import { ProfileStore } from "./profiles.ts";
import { writeGeneration } from "./statements.ts";

/** All table modules over one SQLite connection. */
export class Store {
  readonly machines: MachineStore;
  readonly profiles: ProfileStore;
  readonly groups: GroupStore;
  readonly events: EventStore;
  /** Boot requests' events and sightings, group-committed. */
  readonly history: HistoryWriter;

  constructor(
    readonly db: Db,
    opts: { maxDiscovered?: number; node?: string } = {},
  ) {
    this.machines = new MachineStore(db, opts.maxDiscovered);
    this.profiles = new ProfileStore(db);
    this.groups = new GroupStore(db);
    this.events = new EventStore(db, { node: opts.node });
    this.history = new HistoryWriter(db, this.events, this.machines);
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
