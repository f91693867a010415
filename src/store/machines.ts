import type { Arch, Loader, Machine, MachineCreate, MachineState, MachineUpdate } from "../model/machine.ts";
import { type Db, nowIso } from "./db.ts";
import { ConflictError, NotFoundError } from "./errors.ts";
import { changeColumns, newMachineColumns, patchColumns } from "./machine-columns.ts";

interface Row {
  mac: string;
  uuid: string | null;
  serial: string | null;
  hostname: string | null;
  arch: string | null;
  loader: string | null;
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
  loader: r.loader as Loader | null,
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

/** Where a page starts or ends: the MAC, and for newest-first order also the first sighting. */
export interface PagePosition {
  mac: string;
  seen?: string | undefined;
}

export interface PageRequest {
  limit: number;
  /** `mac` (ascending) or `newest` (first seen, newest first). */
  order?: "mac" | "newest";
  /** The page after this position, or (with `before`) the page before it; neither: the first page. */
  after?: PagePosition | undefined;
  before?: PagePosition | undefined;
}

export interface MachinePage {
  items: Machine[];
  /** Set when there may be machines after / before this page. */
  next?: PagePosition;
  prev?: PagePosition;
}

export const DEFAULT_MAX_DISCOVERED = 10_000;

/** The sort key of the newest-first order. */
const SEEN = "coalesce(first_seen, created_at)";

export class MachineStore {
  /** At least the number of untouched discovered machines (see evictDiscovered); unknown until first needed. */
  private untouchedBound: number | undefined;

  /**
   * @param maxDiscovered most machines kept that a boot request created and nobody touched since: anyone on
   *   the boot network can invent MACs, so past this the least recently seen of them are forgotten.
   */
  constructor(
    private readonly db: Db,
    private readonly maxDiscovered = DEFAULT_MAX_DISCOVERED,
  ) {}

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
    const { where, args } = this.filter(q);
    const sql = `SELECT * FROM machines ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY mac`;
    return (this.db.prepare(sql).all(...args) as Row[]).map(toMachine);
  }

  /** One page of `list`, by keyset (stable while machines come and go). */
  page(q: MachineQuery, p: PageRequest): MachinePage {
    const { where, args } = this.filter(q);
    const newest = p.order === "newest";
    const backward = p.before !== undefined;
    const at = p.before ?? p.after;
    if (at) {
      // Newest-first runs (seen, mac) downwards: "after" is smaller there, larger in MAC order.
      const after = newest !== backward ? "<" : ">";
      if (newest) where.push(`(${SEEN}, mac) ${after} (?, ?)`), args.push(at.seen ?? "", at.mac);
      else where.push(`mac ${after} ?`), args.push(at.mac);
    }
    const dir = newest !== backward ? "DESC" : "ASC";
    const order = newest ? `${SEEN} ${dir}, mac ${dir}` : `mac ${dir}`;
    const sql = `SELECT * FROM machines ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY ${order} LIMIT ?`;
    const rows = this.db.prepare(sql).all(...args, p.limit + 1) as Row[];
    const more = rows.length > p.limit;
    const items = rows.slice(0, p.limit).map(toMachine);
    if (backward) items.reverse();
    const pos = (m: Machine | undefined): PagePosition | undefined =>
      m && { mac: m.mac, ...(newest ? { seen: m.firstSeen ?? m.createdAt } : {}) };
    const first = pos(items[0]);
    const last = pos(items.at(-1));
    const out: MachinePage = { items };
    // Going forward, what lies before is known to exist when we came from a position; and the reverse.
    if (first && (backward ? more : at !== undefined)) out.prev = first;
    if (last && (backward ? true : more)) out.next = last;
    return out;
  }

  /** Machines per profile (their own profile, not one a group lends them). */
  countByProfile(): Map<string, number> {
    const rows = this.db
      .prepare("SELECT profile, count(*) n FROM machines WHERE profile IS NOT NULL GROUP BY profile")
      .all() as { profile: string; n: number }[];
    return new Map(rows.map((r) => [r.profile, r.n]));
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

  /** Stores a new machine in the state its owner (boot/machines.ts) chose. */
  create(input: MachineCreate, state: MachineState): Machine {
    if (this.get(input.mac)) throw new ConflictError(`machine ${input.mac} already exists`, { mac: input.mac });
    this.assertIpFree(input.ip, input.mac);
    const cols = newMachineColumns(input, state, nowIso());
    const keys = Object.keys(cols);
    this.db
      .prepare(`INSERT INTO machines (${keys.join(", ")}) VALUES (${keys.map(() => "?").join(", ")})`)
      .run(...Object.values(cols));
    return this.require(input.mac);
  }

  /** Writes the patched fields; state changes are the owner's (boot/machines.ts). */
  update(mac: string, patch: MachineUpdate): Machine {
    if (patch.ip) this.assertIpFree(patch.ip, mac);
    this.write(mac, patchColumns(patch));
    return this.require(mac);
  }

  /** Stores a state the owner decided, with the moment the install finished when it did. */
  setState(mac: string, state: MachineState, installedAt?: string): Machine {
    const cols: Record<string, unknown> = { state };
    if (installedAt) cols.installed_at = installedAt;
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
  recordSighting(s: Sighting): { machine: Machine; created: boolean; evicted: number } {
    const now = nowIso();
    const existing = this.get(s.mac);
    if (!existing) {
      this.db
        .prepare(
          `INSERT INTO machines (mac, uuid, serial, hostname, arch, state, first_seen, last_seen, created_at, updated_at, state_changed_at, untouched)
           VALUES (?, ?, ?, ?, ?, 'discovered', ?, ?, ?, ?, ?, 1)`,
        )
        .run(s.mac, s.uuid ?? null, s.serial ?? null, s.hostname ?? null, s.arch ?? null, now, now, now, now, now);
      return { machine: this.require(s.mac), created: true, evicted: this.evictDiscovered(s.mac) };
    }
    this.db
      .prepare(
        `UPDATE machines SET last_seen = ?, first_seen = coalesce(first_seen, ?),
           uuid = coalesce(uuid, ?), serial = coalesce(serial, ?), arch = coalesce(arch, ?), hostname = coalesce(hostname, ?)
         WHERE mac = ?`,
      )
      .run(now, now, s.uuid ?? null, s.serial ?? null, s.arch ?? null, s.hostname ?? null, s.mac);
    return { machine: this.require(s.mac), created: false, evicted: 0 };
  }

  private filter(q: MachineQuery): { where: string[]; args: unknown[] } {
    const where: string[] = [];
    const args: unknown[] = [];
    if (q.state) where.push("state = ?"), args.push(q.state);
    if (q.profile) where.push("profile = ?"), args.push(q.profile);
    if (q.search) where.push("(mac LIKE ? OR hostname LIKE ?)"), args.push(`%${q.search}%`, `%${q.search}%`);
    return { where, args };
  }

  /**
   * Forgets the least recently seen untouched discovered machines beyond the cap, with their events; never
   * `keep`. Counting them costs a scan of the cap's worth of index entries, so it runs only when the running
   * upper bound passes the cap, and then makes 1% of room at once.
   */
  private evictDiscovered(keep: string): number {
    const count = () =>
      (
        this.db.prepare(`SELECT count(*) n FROM machines INDEXED BY machines_untouched WHERE untouched = 1`).get() as {
          n: number;
        }
      ).n;
    // Everything else (assigning, editing, deleting) only shrinks the set: counting up from a real count stays an upper bound.
    this.untouchedBound = (this.untouchedBound ?? count() - 1) + 1;
    if (this.untouchedBound <= this.maxDiscovered) return 0;
    const target = this.maxDiscovered - Math.floor(this.maxDiscovered / 100);
    const excess = count() - target;
    const macs =
      excess <= 0
        ? []
        : (
            this.db
              .prepare(
                `SELECT mac FROM machines INDEXED BY machines_untouched WHERE untouched = 1 AND mac != ? ORDER BY last_seen, mac LIMIT ?`,
              )
              .all(keep, excess) as { mac: string }[]
          ).map((r) => r.mac);
    const dropMachine = this.db.prepare("DELETE FROM machines WHERE mac = ?");
    const dropEvents = this.db.prepare("DELETE FROM events WHERE mac = ?");
    this.db.transaction(() => {
      for (const mac of macs) dropMachine.run(mac), dropEvents.run(mac);
    })();
    this.untouchedBound = count();
    return macs.length;
  }

  private write(mac: string, changed: Record<string, unknown>): void {
    const cols = changeColumns(changed, nowIso());
    const keys = Object.keys(cols);
    const info = this.db
      .prepare(`UPDATE machines SET ${keys.map((k) => `${k} = ?`).join(", ")} WHERE mac = ?`)
      .run(...Object.values(cols), mac);
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
