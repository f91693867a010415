/**
 * The LeaseRepository of one node on its SQLite file. This process is the only writer, so the rows live in
 * memory and decide at once; writes go to the file through LeaseStore's queue and are committed together
 * (group commit): a write's promise resolves when the transaction holding it commits, at most
 * COMMIT_DELAY_MS after the first write of a batch or as soon as MAX_BATCH writes wait. One commit then
 * covers a whole burst of REQUESTs, as the DHCP server's outbox did before the interface became async.
 */
import { type Cidr, inCidr, parseCidr } from "../dhcp/ip.ts";
import type { Db } from "./db.ts";
import {
  type AllocateRequest,
  type AllocateResult,
  type BindRequest,
  type BindResult,
  type DeclineRequest,
  type DeclineResult,
  type LeaseChanges,
  type LeaseRepository,
  takeable,
} from "./lease-repository.ts";
import { type Lease, LeaseStore } from "./leases.ts";

/** A DHCP client waits seconds for an ACK: a few ms of waiting buys one commit for a whole burst. */
export const COMMIT_DELAY_MS = 2;
/** A commit costs about as much as 10 upserts; bigger batches gain little and make ACKs leave in bursts. */
export const MAX_BATCH = 64;

export class SqliteLeaseRepository implements LeaseRepository {
  readonly engine = "sqlite";
  private readonly store: LeaseStore;
  private readonly rows = new Map<string, Lease>();
  /** Quarantined addresses per subnet, oldest decline first. */
  private readonly quarantines = new Map<string, Set<string>>();
  /** Declined rows read at start, not yet sorted into a subnet (the file does not record one). */
  private unsorted: Lease[] = [];
  private readonly cidrs = new Map<string, Cidr>();
  private waiting: { resolve: () => void; reject: (err: unknown) => void }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly db: Db) {
    this.store = new LeaseStore(db);
    this.load();
  }

  async bind(req: BindRequest): Promise<BindResult> {
    const row = this.rows.get(req.ip);
    if (!takeable(row, req.mac, req.now)) return { ok: false, holder: row };
    const lease = this.bound(req, req.ip);
    await this.commit([lease]);
    return { ok: true, lease };
  }

  async allocate(req: AllocateRequest): Promise<AllocateResult> {
    const taken: Lease[] = [];
    for (const ip of req.candidates) {
      const row = this.rows.get(ip);
      if (!takeable(row, req.mac, req.now)) {
        taken.push(row!);
        continue;
      }
      const lease = this.bound(req, ip);
      await this.commit([lease]);
      return { ok: true, lease };
    }
    return { ok: false, taken };
  }

  async release(_subnet: string, mac: string, ip: string, now: number): Promise<boolean> {
    const row = this.rows.get(ip);
    if (!row || row.mac !== mac || row.state !== "bound") return false;
    await this.commit([{ ...row, state: "released", expiresAt: now, updatedAt: now }]);
    return true;
  }

  async decline(req: DeclineRequest): Promise<DeclineResult> {
    const row = this.rows.get(req.ip);
    // Only the client the address was (or could be) given to knows it is in use; a quarantine is not renewed.
    if (!takeable(row, req.mac, req.now)) return { ok: false, holder: row };
    const { now } = req;
    const quarantine = this.quarantineOf(req.subnet);
    const writes: Lease[] = [];
    const released: string[] = [];
    for (const ip of quarantine) {
      const held = this.rows.get(ip);
      const live = held?.state === "declined" && held.expiresAt > now;
      // Quarantines all last the same time, so the oldest ends first: stop at the first still running.
      if (live && quarantine.size < req.maxQuarantined) break;
      quarantine.delete(ip);
      if (live) {
        writes.push({ ...held, mac: "", state: "released", expiresAt: now, updatedAt: now });
        released.push(ip);
      }
    }
    const lease: Lease = {
      ip: req.ip,
      mac: req.mac,
      state: "declined",
      expiresAt: now + req.quarantineMs,
      hostname: null,
      updatedAt: now,
    };
    quarantine.delete(req.ip);
    quarantine.add(req.ip);
    writes.push(lease);
    await this.commit(writes);
    return { ok: true, lease, released };
  }

  async reclaim(now: number, graceMs: number, limit: number): Promise<number> {
    const ended: string[] = [];
    for (const [ip, l] of this.rows) {
      if (ended.length >= limit) break;
      // A release sets expiresAt to its time, so this covers released, expired and ended quarantines alike.
      if (l.expiresAt <= now - graceMs) ended.push(ip);
    }
    if (ended.length === 0) return 0;
    this.flushNow();
    this.db.transaction(() => {
      for (const ip of ended) this.store.delete(ip);
    })();
    for (const ip of ended) {
      this.rows.delete(ip);
      for (const q of this.quarantines.values()) q.delete(ip);
    }
    return ended.length;
  }

  async get(_subnet: string, ip: string): Promise<Lease | undefined> {
    return this.rows.get(ip);
  }

  async all(): Promise<Lease[]> {
    return [...this.rows.values()].sort((a, b) => a.updatedAt - b.updatedAt);
  }

  async changes(cursor: number): Promise<LeaseChanges> {
    return { leases: [], cursor };
  }

  async cursor(): Promise<number> {
    return 0;
  }

  async reservations(): Promise<Map<string, string>> {
    return this.store.reservations();
  }

  async boundIp(mac: string, now: number): Promise<string | undefined> {
    this.flushNow();
    return this.store.boundIp(mac, now);
  }

  async close(): Promise<void> {
    this.flushNow();
    this.closed = true;
  }

  private bound(req: Omit<BindRequest, "ip">, ip: string): Lease {
    return {
      ip,
      mac: req.mac,
      state: "bound",
      expiresAt: req.now + req.leaseMs,
      hostname: req.hostname,
      updatedAt: req.now,
    };
  }

  /** Applies `leases` in memory now (later callers see them) and resolves once they are on disk. */
  private commit(leases: Lease[]): Promise<void> {
    if (this.closed) return Promise.reject(new Error("lease repository closed"));
    for (const l of leases) {
      this.rows.set(l.ip, l);
      this.store.put(l);
    }
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      if (this.waiting.length >= MAX_BATCH) this.flushNow();
      else this.timer ??= setTimeout(() => this.flushNow(), COMMIT_DELAY_MS);
    });
  }

  private flushNow(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const waiting = this.waiting;
    this.waiting = [];
    try {
      this.store.flush();
    } catch (err) {
      // Nothing of the batch is on disk: its callers get the error (no ACK goes out) and memory goes back to
      // what the file holds.
      this.load();
      for (const w of waiting) w.reject(err);
      return;
    }
    for (const w of waiting) w.resolve();
  }

  private load(): void {
    this.rows.clear();
    this.quarantines.clear();
    this.unsorted = [];
    for (const l of this.store.all()) {
      this.rows.set(l.ip, l);
      if (l.state === "declined") this.unsorted.push(l);
    }
  }

  private quarantineOf(subnet: string): Set<string> {
    let q = this.quarantines.get(subnet);
    if (q) return q;
    let cidr = this.cidrs.get(subnet);
    if (!cidr) this.cidrs.set(subnet, (cidr = parseCidr(subnet)));
    const mine = this.unsorted.filter((l) => inCidr(cidr, l.ip)).sort((a, b) => a.updatedAt - b.updatedAt);
    this.unsorted = this.unsorted.filter((l) => !inCidr(cidr, l.ip));
    q = new Set(mine.map((l) => l.ip));
    this.quarantines.set(subnet, q);
    return q;
  }
}
