import type { EventInput, EventSink } from "../model/event.ts";
import type { Group, GroupCreate } from "../model/group.ts";
import type { Machine, MachineCreate, MachineState, MachineUpdate } from "../model/machine.ts";
import type { Profile, ProfileCreate } from "../model/profile.ts";
import type { GroupStore } from "./groups.ts";
import type { MachineStore } from "./machines.ts";
import type { ProfileStore } from "./profiles.ts";

/** The events a write records, from what it wrote (one transaction with the write on SQLite). */
export type EventsOf<R> = (result: R) => EventInput[];

/** A change to one machine: fields, and a state change decided by the owner against the state it read. */
export interface MachineChange {
  patch?: MachineUpdate;
  /** Write only while the machine is still in this state; otherwise nothing is written (undefined back). */
  expect?: MachineState;
  state?: MachineState;
  /** When an install finished (state `installed`). */
  installedAt?: string;
}

/**
 * Writes to the shared state: machines (by their owner, boot/machines.ts), profiles and groups. On SQLite they
 * are the file's own transactions; on PostgreSQL (pg/state-writes.ts) they go to PostgreSQL first, which
 * decides conflicts between nodes, and then into the node's replica, so a caller reads its own write at once.
 * Every method is atomic on its own: nothing awaits inside a SQLite transaction.
 */
export interface StateWrites {
  /**
   * Brings this node's copy of one row up to date before a write is decided from it: another node may have
   * written it a moment ago (PostgreSQL); a no-op where the file is the truth (SQLite).
   */
  refresh(kind: "machine" | "profile" | "group", key: string): Promise<void>;
  createMachine(input: MachineCreate, state: MachineState, events: EventsOf<Machine>): Promise<Machine>;
  /** Undefined when `change.expect` no longer holds: the caller reads the machine again and decides again. */
  updateMachine(mac: string, change: MachineChange, events: EventsOf<Machine>): Promise<Machine | undefined>;
  deleteMachine(mac: string, events: EventsOf<Machine>): Promise<void>;
  /** `create` refuses a name in use (409); `put` creates or replaces. */
  putProfile(
    p: ProfileCreate,
    how: "create" | "put",
    events: EventsOf<{ profile: Profile; created: boolean }>,
  ): Promise<{ profile: Profile; created: boolean }>;
  /** Loads a built-in unless an operator replaced it (store/profiles.ts putBuiltin). */
  putBuiltinProfile(p: ProfileCreate): Promise<void>;
  deleteProfile(name: string, events: EventsOf<string>): Promise<void>;
  putGroup(
    g: GroupCreate,
    how: "create" | "put",
    events: EventsOf<{ group: Group; created: boolean }>,
  ): Promise<{ group: Group; created: boolean }>;
  deleteGroup(name: string, events: EventsOf<string>): Promise<void>;
}

/** The tables a node's SQLite file holds, and its transactions. */
export interface LocalTables {
  machines: MachineStore;
  profiles: ProfileStore;
  groups: GroupStore;
  events: EventSink;
  transaction<T>(fn: () => T): T;
}

/** The SQLite file's writes: each is one transaction of the table stores' own statements and its events. */
export class LocalWrites implements StateWrites {
  constructor(private readonly store: LocalTables) {}

  async refresh(): Promise<void> {}

  async createMachine(input: MachineCreate, state: MachineState, events: EventsOf<Machine>): Promise<Machine> {
    return this.inTransaction(() => this.store.machines.create(input, state), events);
  }

  async updateMachine(mac: string, change: MachineChange, events: EventsOf<Machine>): Promise<Machine | undefined> {
    const { machines } = this.store;
    return this.store.transaction(() => {
      if (change.expect && machines.require(mac).state !== change.expect) return undefined;
      let m = change.patch ? machines.update(mac, change.patch) : machines.require(mac);
      if (change.state && change.state !== m.state) m = machines.setState(mac, change.state, change.installedAt);
      this.record(events(m));
      return m;
    });
  }

  async deleteMachine(mac: string, events: EventsOf<Machine>): Promise<void> {
    this.inTransaction(() => {
      const m = this.store.machines.require(mac);
      this.store.machines.delete(mac);
      return m;
    }, events);
  }

  async putProfile(p: ProfileCreate, how: "create" | "put", events: EventsOf<{ profile: Profile; created: boolean }>) {
    const { profiles } = this.store;
    return this.inTransaction(() => {
      const created = profiles.get(p.name) === undefined;
      return { profile: how === "create" ? profiles.create(p) : profiles.put(p), created };
    }, events);
  }

  async putBuiltinProfile(p: ProfileCreate): Promise<void> {
    this.store.profiles.putBuiltin(p);
  }

  async deleteProfile(name: string, events: EventsOf<string>): Promise<void> {
    this.inTransaction(() => (this.store.profiles.delete(name), name), events);
  }

  async putGroup(g: GroupCreate, how: "create" | "put", events: EventsOf<{ group: Group; created: boolean }>) {
    const { groups } = this.store;
    return this.inTransaction(() => {
      const created = groups.get(g.name) === undefined;
      return { group: how === "create" ? groups.create(g) : groups.put(g), created };
    }, events);
  }

  async deleteGroup(name: string, events: EventsOf<string>): Promise<void> {
    this.inTransaction(() => (this.store.groups.delete(name), name), events);
  }

  private inTransaction<R>(write: () => R, events: EventsOf<R>): R {
    return this.store.transaction(() => {
      const r = write();
      this.record(events(r));
      return r;
    });
  }

  private record(events: EventInput[]): void {
    for (const e of events) this.store.events.append(e);
  }
}
