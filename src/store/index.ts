import { join } from "node:path";
import { type Db, openDb } from "./db.ts";
import { EventStore } from "./events.ts";
import { GroupStore } from "./groups.ts";
import { MachineStore } from "./machines.ts";
import { ProfileStore } from "./profiles.ts";

/** All table modules over one SQLite connection. */
export class Store {
  readonly machines: MachineStore;
  readonly profiles: ProfileStore;
  readonly groups: GroupStore;
  readonly events: EventStore;

  constructor(
    readonly db: Db,
    opts: { maxDiscovered?: number } = {},
  ) {
    this.machines = new MachineStore(db, opts.maxDiscovered);
    this.profiles = new ProfileStore(db);
    this.groups = new GroupStore(db);
    this.events = new EventStore(db);
  }

  static open(dataDir: string, opts: { maxDiscovered?: number } = {}): Store {
    return new Store(openDb(join(dataDir, "kindling.db")), opts);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
