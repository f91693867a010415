import type { Arch, Machine, MachineCreate, MachineState, MachineUpdate } from "../model/machine.ts";
import { type Db, nowIso } from "./db.ts";
import { ConflictError, NotFoundError } from "./errors.ts";

interface Row {
  mac: string;
  uuid: string | null;
  serial: string | null;
  hostname: string | null;
  arch: string | null;
  labels: string;
  metadata: string;
  profile: string | null;
  state: string;
  ip: string | null;
  first_seen: string | null;
  last_seen: string | null;
  installed_at: string | null;
  state_changed_at: string | null;
  created_at: string;
  updated_at: string;
}

const toMachine = (r: Row): Machine => ({
  mac: r.mac,
  uuid: r.uuid,
  serial: r.serial,
  hostname: r.hostname,
  arch: r.arch as Arch | null,
  labels: JSON.parse(r.labels),
  metadata: JSON.parse(r.metadata),
  profile: r.profile,
  state: r.state as MachineState,
  ip: r.ip,
  firstSeen: r.first_seen,
  lastSeen: r.last_seen,
  installedAt: r.installed_at,
  stateChangedAt: r.state_changed_at ?? r.updated_at,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

/** What a boot request (DHCP, iPXE) tells about a machine. */
export interface Sighting {
  mac: string;
  uuid?: string | undefined;
  serial?: string | undefined;
  arch?: Arch | undefined;
  hostname?: string | undefined;
}

export interface MachineQuery {
  state?: MachineState;
  profile?: string;
  /** Substring of MAC or hostname. */
  search?: string;
}

export class MachineStore {
  constructor(private readonly db: Db) {}

  get(mac: string): Machine | undefined {
    const row = this.db.prepare("SELECT * FROM machines WHERE mac = ?").get(mac) as Row | undefined;
    return row && toMachine(row);
  }

  require(mac: string): Machine {
    const m = this.get(mac);
    if (!m) throw new NotFoundError(`machine ${mac} not found`);
    return m;
  }

  list(q: MachineQuery = {}): Machine[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (q.state) where.push("state = ?"), args.push(q.state);
    if (q.profile) where.push("profile = ?"), args.push(q.profile);
    if (q.search) where.push("(mac LIKE ? OR hostname LIKE ?)"), args.push(`%${q.search}%`, `%${q.search}%`);
    const sql = `SELECT * FROM machines ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY mac`;
    return (this.db.prepare(sql).all(...args) as Row[]).map(toMachine);
  }

  countByState(): Record<MachineState, number> {
    const out = { discovered: 0, ready: 0, installing: 0, installed: 0, running: 0, failed: 0 };
    for (const r of this.db.prepare("SELECT state, count(*) n FROM machines GROUP BY state").all() as {
      state: MachineState;
      n: number;
    }[])
      out[r.state] = r.n;
    return out;
  }

  /** Registers a machine; with a profile it is `ready`, without one `discovered`. */
  create(input: MachineCreate): Machine {
    if (this.get(input.mac)) throw new ConflictError(`machine ${input.mac} already exists`, { mac: input.mac });
    this.assertIpFree(input.ip, input.mac);
    const now = nowIso();
    this.db
      .prepare(
        `INSERT INTO machines (mac, uuid, serial, hostname, arch, labels, metadata, profile, state, ip, created_at, updated_at, state_changed_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        input.mac,
        input.uuid ?? null,
        input.serial ?? null,
        input.hostname ?? null,
        input.arch ?? null,
        JSON.stringify(input.labels),
        JSON.stringify(input.metadata),
        input.profile ?? null,
        input.profile ? "ready" : "discovered",
        input.ip ?? null,
        now,
        now,
        now,
      );
    return this.require(input.mac);
  }

  /** Writes the patched fields; state changes are the lifecycle's (boot/lifecycle-service.ts). */
  update(mac: string, patch: MachineUpdate): Machine {
    if (patch.ip) this.assertIpFree(patch.ip, mac);
    const cols: Record<string, unknown> = {};
    for (const key of ["profile", "hostname", "uuid", "serial", "arch", "ip"] as const) {
      if (patch[key] !== undefined) cols[key] = patch[key];
    }
    if (patch.labels) cols.labels = JSON.stringify(patch.labels);
    if (patch.metadata) cols.metadata = JSON.stringify(patch.metadata);
    this.write(mac, cols);
    return this.require(mac);
  }

  setState(mac: string, state: MachineState): Machine {
    const cols: Record<string, unknown> = { state };
    if (state === "installed") cols.installed_at = nowIso();
    this.write(mac, cols);
    return this.require(mac);
  }

  delete(mac: string): void {
    const info = this.db.prepare("DELETE FROM machines WHERE mac = ?").run(mac);
    if (info.changes === 0) throw new NotFoundError(`machine ${mac} not found`);
  }

  /**
   * Records that a machine asked to boot: an unknown MAC becomes `discovered`; a known one gets `last_seen`
   * and any identity fields it did not have yet (what the operator typed is never overwritten).
   */
  recordSighting(s: Sighting): { machine: Machine; created: boolean } {
    const now = nowIso();
    const existing = this.get(s.mac);
    if (!existing) {
      this.db
        .prepare(
          `INSERT INTO machines (mac, uuid, serial, hostname, arch, state, first_seen, last_seen, created_at, updated_at, state_changed_at)
           VALUES (?, ?, ?, ?, ?, 'discovered', ?, ?, ?, ?, ?)`,
        )
        .run(s.mac, s.uuid ?? null, s.serial ?? null, s.hostname ?? null, s.arch ?? null, now, now, now, now, now);
      return { machine: this.require(s.mac), created: true };
    }
    this.db
      .prepare(
        `UPDATE machines SET last_seen = ?, first_seen = coalesce(first_seen, ?),
           uuid = coalesce(uuid, ?), serial = coalesce(serial, ?), arch = coalesce(arch, ?), hostname = coalesce(hostname, ?)
         WHERE mac = ?`,
      )
      .run(now, now, s.uuid ?? null, s.serial ?? null, s.arch ?? null, s.hostname ?? null, s.mac);
    return { machine: this.require(s.mac), created: false };
  }

  private write(mac: string, cols: Record<string, unknown>): void {
    const now = nowIso();
    if ("state" in cols) cols.state_changed_at = now;
    const keys = Object.keys(cols);
    const sets = [...keys.map((k) => `${k} = ?`), "updated_at = ?"].join(", ");
    const info = this.db
      .prepare(`UPDATE machines SET ${sets} WHERE mac = ?`)
      .run(...keys.map((k) => cols[k]), now, mac);
    if (info.changes === 0) throw new NotFoundError(`machine ${mac} not found`);
  }

  private assertIpFree(ip: string | undefined, mac: string): void {
    if (!ip) return;
    const holder = this.db.prepare("SELECT mac FROM machines WHERE ip = ? AND mac != ?").get(ip, mac) as
      | { mac: string }
      | undefined;
    if (holder) throw new ConflictError(`ip ${ip} is already reserved for ${holder.mac}`, { ip, mac: holder.mac });
  }
}
