import type { Db } from "./db.ts";

/** The columns machines, profiles and groups have on both engines (pg/migrations.ts keeps them equal). */
export const MACHINE_COLUMNS = [
  "mac",
  "uuid",
  "serial",
  "hostname",
  "arch",
  "loader",
  "labels",
  "metadata",
  "profile",
  "state",
  "ip",
  "first_seen",
  "last_seen",
  "installed_at",
  "state_changed_at",
  "created_at",
  "updated_at",
  "untouched",
] as const;
export const PROFILE_COLUMNS = ["name", "body", "builtin", "created_at", "updated_at"] as const;
export const GROUP_COLUMNS = ["name", "body", "created_at", "updated_at"] as const;
export const BMC_COLUMNS = [
  "mac",
  "driver",
  "address",
  "port",
  "username",
  "secret",
  "key_id",
  "options",
  "power_state",
  "power_error",
  "power_checked_at",
  "created_at",
  "updated_at",
] as const;

export type MachineRow = Record<(typeof MACHINE_COLUMNS)[number], unknown>;
export type ProfileRow = Record<(typeof PROFILE_COLUMNS)[number], unknown>;
export type GroupRow = Record<(typeof GROUP_COLUMNS)[number], unknown>;
export type BmcRow = Record<(typeof BMC_COLUMNS)[number], unknown>;

/** Everything the replica holds. */
export interface ReplicaState {
  machines: MachineRow[];
  profiles: ProfileRow[];
  groups: GroupRow[];
  bmcs: BmcRow[];
}

/** Rows as PostgreSQL has them now; `gone` names rows PostgreSQL no longer has. */
export interface ReplicaChanges {
  machines?: { rows: MachineRow[]; gone: string[] };
  profiles?: { rows: ProfileRow[]; gone: string[] };
  groups?: { rows: GroupRow[]; gone: string[] };
  bmcs?: { rows: BmcRow[]; gone: string[] };
}

const IDENTITY = ["uuid", "serial", "hostname", "arch"] as const;
const PENDING = "EXISTS (SELECT 1 FROM pending_sightings p WHERE p.mac = excluded.mac)";

const upsert = (table: string, cols: readonly string[], key: string, sets: string[]): string =>
  `INSERT INTO ${table} (${cols.join(", ")}) VALUES (${cols.map(() => "?").join(", ")})
   ON CONFLICT(${key}) DO UPDATE SET ${sets.join(", ")}`;

/**
 * A PostgreSQL node's SQLite file as the replica of the shared machines, profiles, groups and BMCs: every read of
 * them is served here (the boot path never waits on the network, and keeps answering while PostgreSQL is
 * away), and pg/replica.ts applies here what PostgreSQL holds. These writes count in the write generation,
 * so an `/ipxe` answer cached before a change made on another node is not served after it.
 */
export class ReplicaTables {
  private readonly machine;
  private readonly freeIp;
  private readonly dropMachine;
  private readonly profile;
  private readonly dropProfile;
  private readonly group;
  private readonly dropGroup;
  private readonly bmc;
  private readonly dropBmc;
  private readonly apply;

  constructor(private readonly db: Db) {
    const others = MACHINE_COLUMNS.filter((c) => c !== "mac" && c !== "last_seen" && c !== "first_seen");
    this.machine = db.prepare(
      upsert("machines", MACHINE_COLUMNS, "mac", [
        // A sighting this node has not shipped yet may know an identity field PostgreSQL does not have yet.
        ...others.map((c) =>
          (IDENTITY as readonly string[]).includes(c)
            ? `${c} = CASE WHEN excluded.${c} IS NULL AND ${PENDING} THEN machines.${c} ELSE excluded.${c} END`
            : `${c} = excluded.${c}`,
        ),
        "first_seen = coalesce(excluded.first_seen, machines.first_seen)",
        "last_seen = CASE WHEN machines.last_seen > excluded.last_seen THEN machines.last_seen ELSE coalesce(excluded.last_seen, machines.last_seen) END",
      ]),
    );
    // PostgreSQL keeps reservations unique; applied one row at a time, an address moving from one machine to
    // another must leave the old holder first here too (the holder's own change follows).
    this.freeIp = db.prepare("UPDATE machines SET ip = NULL WHERE ip = ? AND mac != ?");
    // A machine this node saw and has not shipped yet stays: shipping it brings it back to PostgreSQL.
    this.dropMachine = db.prepare(
      "DELETE FROM machines WHERE mac = ? AND NOT EXISTS (SELECT 1 FROM pending_sightings p WHERE p.mac = machines.mac)",
    );
    this.profile = db.prepare(
      upsert(
        "profiles",
        PROFILE_COLUMNS,
        "name",
        PROFILE_COLUMNS.filter((c) => c !== "name").map((c) => `${c} = excluded.${c}`),
      ),
    );
    this.dropProfile = db.prepare("DELETE FROM profiles WHERE name = ?");
    this.group = db.prepare(
      upsert(
        "groups",
        GROUP_COLUMNS,
        "name",
        GROUP_COLUMNS.filter((c) => c !== "name").map((c) => `${c} = excluded.${c}`),
      ),
    );
    this.dropGroup = db.prepare("DELETE FROM groups WHERE name = ?");
    this.bmc = db.prepare(
      upsert(
        "bmcs",
        BMC_COLUMNS,
        "mac",
        BMC_COLUMNS.filter((c) => c !== "mac").map((c) => `${c} = excluded.${c}`),
      ),
    );
    this.dropBmc = db.prepare("DELETE FROM bmcs WHERE mac = ?");
    this.apply = db.transaction((c: ReplicaChanges, also: () => void) => {
      // Profiles first and groups before machines: a machine names a profile, a group names one too.
      for (const r of c.profiles?.rows ?? []) this.profile.run(...PROFILE_COLUMNS.map((k) => r[k]));
      for (const r of c.groups?.rows ?? []) this.group.run(...GROUP_COLUMNS.map((k) => r[k]));
      for (const r of c.machines?.rows ?? []) {
        if (r.ip) this.freeIp.run(r.ip, r.mac);
        this.machine.run(...MACHINE_COLUMNS.map((k) => r[k]));
      }
      // A BMC belongs to a machine (the foreign key): after the machines, and dropped with its machine.
      for (const r of c.bmcs?.rows ?? []) this.bmc.run(...BMC_COLUMNS.map((k) => r[k]));
      for (const mac of c.bmcs?.gone ?? []) this.dropBmc.run(mac);
      for (const mac of c.machines?.gone ?? []) this.dropMachine.run(mac);
      for (const name of c.groups?.gone ?? []) this.dropGroup.run(name);
      for (const name of c.profiles?.gone ?? []) this.dropProfile.run(name);
      also();
    });
  }

  /** Applies PostgreSQL's rows in one transaction, with `also` (the events of this node's own write). */
  applyChanges(changes: ReplicaChanges, also: () => void = () => {}): void {
    this.apply(changes, also);
  }

  /**
   * Makes the replica equal to PostgreSQL's full state: what PostgreSQL has is written, what it lacks is
   * dropped (except this node's unshipped sightings).
   */
  replaceAll(all: ReplicaState): void {
    const absent = (table: string, key: string, keep: Set<unknown>) =>
      (this.db.prepare(`SELECT ${key} AS k FROM ${table}`).all() as { k: string }[])
        .map((r) => r.k)
        .filter((k) => !keep.has(k));
    this.apply(
      {
        machines: { rows: all.machines, gone: absent("machines", "mac", new Set(all.machines.map((r) => r.mac))) },
        profiles: { rows: all.profiles, gone: absent("profiles", "name", new Set(all.profiles.map((r) => r.name))) },
        groups: { rows: all.groups, gone: absent("groups", "name", new Set(all.groups.map((r) => r.name))) },
        bmcs: { rows: all.bmcs, gone: absent("bmcs", "mac", new Set(all.bmcs.map((r) => r.mac))) },
      },
      () => {},
    );
  }

  /** Everything the file holds, for a node that brings its own state to an empty PostgreSQL (adopt). */
  snapshot(): ReplicaState {
    const all = (table: string, cols: readonly string[]) =>
      this.db.prepare(`SELECT ${cols.join(", ")} FROM ${table}`).all() as Record<string, unknown>[];
    return {
      machines: all("machines", MACHINE_COLUMNS) as MachineRow[],
      profiles: all("profiles", PROFILE_COLUMNS) as ProfileRow[],
      groups: all("groups", GROUP_COLUMNS) as GroupRow[],
      bmcs: all("bmcs", BMC_COLUMNS) as BmcRow[],
    };
  }

  /** A row of this file's own bookkeeping (the `replication` table). */
  mark(name: string): string | undefined {
    const r = this.db.prepare("SELECT value FROM replication WHERE name = ?").get(name) as
      | { value: string }
      | undefined;
    return r?.value;
  }

  setMark(name: string, value: string): void {
    this.db
      .prepare(
        "INSERT INTO replication (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
      )
      .run(name, value);
  }

  /** Whether this node saw the machine and has not shipped that sighting yet. */
  pending(mac: string): boolean {
    return this.db.prepare("SELECT 1 FROM pending_sightings WHERE mac = ?").get(mac) !== undefined;
  }

  /** Drops a machine's unshipped sighting (the operator deleted the machine on purpose). */
  forgetPending(mac: string): void {
    this.db.prepare("DELETE FROM pending_sightings WHERE mac = ?").run(mac);
  }
}
