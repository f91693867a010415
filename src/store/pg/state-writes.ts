import type pg from "pg";
import type { EventInput } from "../../model/event.ts";
import type { Group, GroupCreate } from "../../model/group.ts";
import type { Machine, MachineCreate, MachineState } from "../../model/machine.ts";
import type { Profile, ProfileCreate } from "../../model/profile.ts";
import { nowIso } from "../db.ts";
import { ConflictError, NotFoundError } from "../errors.ts";
import { changeColumns, newMachineColumns, patchColumns } from "../machine-columns.ts";
import type { GroupRow, MachineRow, ProfileRow, ReplicaChanges } from "../replica-tables.ts";
import type { EventsOf, LocalTables, MachineChange, StateWrites } from "../writes.ts";
import { type ChangeKind, changeNotice, STATE_CHANNEL } from "./changes.ts";
import type { PgDatabase } from "./database.ts";

/** Where a committed write lands on this node: its replica, with the write's events, in one transaction. */
export interface ReplicaSink {
  applyOwn(changes: ReplicaChanges, also: () => void): void;
  /** Drops a machine's unshipped sighting before the operator's delete reaches the replica. */
  forgetPending(mac: string): void;
  /** Refetches one row, in order with every other change heard. */
  refresh(kind: ChangeKind, key: string): Promise<void>;
}

const UNIQUE_VIOLATION = "23505";

/**
 * Writes to the shared state on a PostgreSQL node. PostgreSQL decides: each write is one PostgreSQL
 * transaction whose constraints and conditions hold across nodes (a machine's state is compared and set in one
 * statement; an address is unique by constraint), and which notifies every node of the change when it
 * commits (changes.ts). Then the committed rows go into this node's replica with the write's events, so the
 * caller, and the next boot request here, read the write at once. An unreachable PostgreSQL throws
 * DatabaseUnavailableError: the API answers 503 and nothing is written anywhere.
 */
export class PgStateWrites implements StateWrites {
  /**
   * @param shipFirst ships this node's sighting of a machine if it has not gone yet: a machine discovered here
   *   a moment ago is in the replica before it is in PostgreSQL, and an operator may change it at once.
   */
  constructor(
    private readonly pg: PgDatabase,
    private readonly local: LocalTables,
    private readonly replica: ReplicaSink,
    private readonly shipFirst: (mac: string) => Promise<void>,
  ) {}

  refresh(kind: "machine" | "profile" | "group", key: string): Promise<void> {
    return this.replica.refresh(kind === "machine" ? "m" : kind === "profile" ? "p" : "g", key);
  }

  async createMachine(input: MachineCreate, state: MachineState, events: EventsOf<Machine>): Promise<Machine> {
    await this.shipFirst(input.mac);
    const row = await this.write("m", input.mac, async (c) => {
      if (input.ip) await ipMustBeFree(c, input.ip, input.mac);
      const cols = newMachineColumns(input, state, nowIso());
      const { rows } = await c.query<MachineRow>(
        `INSERT INTO machines (${Object.keys(cols).join(", ")}) VALUES (${params(cols)})
         ON CONFLICT (mac) DO NOTHING RETURNING *`,
        Object.values(cols),
      );
      if (!rows[0]) throw new ConflictError(`machine ${input.mac} already exists`, { mac: input.mac });
      return rows[0];
    });
    return this.own({ machines: { rows: [row], gone: [] } }, () => this.local.machines.require(input.mac), events);
  }

  async updateMachine(mac: string, change: MachineChange, events: EventsOf<Machine>): Promise<Machine | undefined> {
    await this.shipFirst(mac);
    const row = await this.write("m", mac, async (c) => {
      if (change.patch?.ip) await ipMustBeFree(c, change.patch.ip, mac);
      const changed = change.patch ? patchColumns(change.patch) : {};
      if (change.state) {
        changed.state = change.state;
        if (change.installedAt) changed.installed_at = change.installedAt;
      }
      const cols = changeColumns(changed, nowIso());
      const keys = Object.keys(cols);
      const args = [...Object.values(cols), mac];
      let where = `mac = $${args.length}`;
      if (change.expect) args.push(change.expect), (where += ` AND state = $${args.length}`);
      const { rows } = await c.query<MachineRow>(
        `UPDATE machines SET ${keys.map((k, i) => `${k} = $${i + 1}`).join(", ")} WHERE ${where} RETURNING *`,
        args,
      );
      if (rows[0]) return { row: rows[0], written: true };
      const now = await c.query<MachineRow>("SELECT * FROM machines WHERE mac = $1", [mac]);
      if (!now.rows[0]) throw new NotFoundError(`machine ${mac} not found`);
      return { row: now.rows[0], written: false };
    }).catch((err: unknown) => {
      if (err instanceof NotFoundError) this.replica.applyOwn({ machines: { rows: [], gone: [mac] } }, () => {});
      throw err;
    });
    // Another node changed the state first: the replica learns the state that won, the caller decides again.
    if (!row.written) {
      this.replica.applyOwn({ machines: { rows: [row.row], gone: [] } }, () => {});
      return undefined;
    }
    return this.own({ machines: { rows: [row.row], gone: [] } }, () => this.local.machines.require(mac), events);
  }

  async deleteMachine(mac: string, events: EventsOf<Machine>): Promise<void> {
    await this.shipFirst(mac);
    const before = this.local.machines.get(mac);
    const row = await this.write("m", mac, async (c) => {
      const { rows } = await c.query<MachineRow>("DELETE FROM machines WHERE mac = $1 RETURNING *", [mac]);
      if (!rows[0]) throw new NotFoundError(`machine ${mac} not found`);
      return rows[0];
    });
    this.replica.forgetPending(mac);
    const m = before ?? ({ mac, state: row.state } as Machine);
    this.own({ machines: { rows: [], gone: [mac] } }, () => m, events);
  }

  async putProfile(p: ProfileCreate, how: "create" | "put", events: EventsOf<{ profile: Profile; created: boolean }>) {
    const { name, ...body } = p;
    const { row, created } = await this.write("p", name, async (c) => {
      const now = nowIso();
      const { rows } = await c.query<ProfileRow & { inserted: boolean }>(
        `INSERT INTO profiles (name, body, builtin, created_at, updated_at) VALUES ($1, $2, 0, $3, $3)
         ON CONFLICT (name) DO ${how === "create" ? "NOTHING" : "UPDATE SET body = excluded.body, builtin = 0, updated_at = excluded.updated_at"}
         RETURNING *, (xmax = 0) AS inserted`,
        [name, JSON.stringify(body), now],
      );
      if (!rows[0]) throw new ConflictError(`profile ${name} already exists`, { name });
      const { inserted, ...row } = rows[0];
      return { row: row as ProfileRow, created: inserted };
    });
    return this.own(
      { profiles: { rows: [row], gone: [] } },
      () => ({ profile: this.local.profiles.require(name), created }),
      events,
    );
  }

  async putBuiltinProfile(p: ProfileCreate): Promise<void> {
    const { name, ...body } = p;
    const now = nowIso();
    // An operator's own version (builtin = 0) is kept; an unchanged built-in keeps its updated_at.
    const written = await this.write("p", name, async (c) => {
      const { rows } = await c.query<ProfileRow>(
        `INSERT INTO profiles (name, body, builtin, created_at, updated_at) VALUES ($1, $2, 1, $3, $3)
         ON CONFLICT (name) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at
           WHERE profiles.builtin = 1 AND profiles.body <> excluded.body
         RETURNING *`,
        [name, JSON.stringify(body), now],
      );
      return rows[0];
    });
    if (written) this.replica.applyOwn({ profiles: { rows: [written], gone: [] } }, () => {});
  }

  async deleteProfile(name: string, events: EventsOf<string>): Promise<void> {
    await this.write("p", name, async (c) => {
      const used = await c.query<{ n: number }>("SELECT count(*)::int AS n FROM machines WHERE profile = $1", [name]);
      const groups = await c.query<{ name: string }>(
        "SELECT name FROM groups WHERE (body::jsonb ->> 'profile') = $1 ORDER BY name",
        [name],
      );
      const n = used.rows[0]!.n;
      if (n > 0 || groups.rows.length > 0)
        throw new ConflictError(`profile ${name} is in use by ${n} machine(s) and ${groups.rows.length} group(s)`, {
          machines: n,
          groups: groups.rows.map((g) => g.name),
        });
      const { rowCount } = await c.query("DELETE FROM profiles WHERE name = $1", [name]);
      if (!rowCount) throw new NotFoundError(`profile ${name} not found`);
    });
    this.own({ profiles: { rows: [], gone: [name] } }, () => name, events);
  }

  async putGroup(g: GroupCreate, how: "create" | "put", events: EventsOf<{ group: Group; created: boolean }>) {
    const { name, ...body } = g;
    const { row, created } = await this.write("g", name, async (c) => {
      const { rows } = await c.query<GroupRow & { inserted: boolean }>(
        `INSERT INTO groups (name, body, created_at, updated_at) VALUES ($1, $2, $3, $3)
         ON CONFLICT (name) DO ${how === "create" ? "NOTHING" : "UPDATE SET body = excluded.body, updated_at = excluded.updated_at"}
         RETURNING *, (xmax = 0) AS inserted`,
        [name, JSON.stringify(body), nowIso()],
      );
      if (!rows[0]) throw new ConflictError(`group ${name} already exists`, { name });
      const { inserted, ...row } = rows[0];
      return { row: row as GroupRow, created: inserted };
    });
    return this.own(
      { groups: { rows: [row], gone: [] } },
      () => ({ group: this.local.groups.require(name), created }),
      events,
    );
  }

  async deleteGroup(name: string, events: EventsOf<string>): Promise<void> {
    await this.write("g", name, async (c) => {
      const { rowCount } = await c.query("DELETE FROM groups WHERE name = $1", [name]);
      if (!rowCount) throw new NotFoundError(`group ${name} not found`);
    });
    this.own({ groups: { rows: [], gone: [name] } }, () => name, events);
  }

  /** One PostgreSQL transaction that tells every node what it changed when it commits. */
  private write<T>(kind: ChangeKind, key: string, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.pg.transaction(async (c) => {
      try {
        const out = await fn(c);
        await c.query("SELECT pg_notify($1, $2)", [STATE_CHANNEL, changeNotice(kind, key)]);
        return out;
      } catch (err) {
        // Two nodes reserving one address at once: the constraint decides, the loser hears what it lost.
        const e = err as { code?: string; detail?: string };
        if (e.code === UNIQUE_VIOLATION) {
          const [, column, value] = /Key \((\w+)\)=\((.*)\) already exists/.exec(e.detail ?? "") ?? [];
          throw new ConflictError(
            column ? `${column} ${value} is already taken (${key})` : `${key}: ${(err as Error).message}`,
            column ? { [column]: value } : { key },
          );
        }
        throw err;
      }
    });
  }

  /** The committed rows into the replica, and the write's events into the node's log, in one transaction. */
  private own<R>(changes: ReplicaChanges, result: () => R, events: EventsOf<R>): R {
    let r!: R;
    this.replica.applyOwn(changes, () => {
      r = result();
      for (const e of events(r) as EventInput[]) this.local.events.append(e);
    });
    return r;
  }
}

const params = (cols: Record<string, unknown>) =>
  Object.keys(cols)
    .map((_, i) => `$${i + 1}`)
    .join(", ");

async function ipMustBeFree(c: pg.PoolClient, ip: string, mac: string): Promise<void> {
  const { rows } = await c.query<{ mac: string }>("SELECT mac FROM machines WHERE ip = $1 AND mac <> $2", [ip, mac]);
  if (rows[0]) throw new ConflictError(`ip ${ip} is already reserved for ${rows[0].mac}`, { ip, mac: rows[0].mac });
}
