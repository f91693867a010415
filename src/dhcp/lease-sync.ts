/**
 * Keeps full mode's pools in step with the lease repository: fills them at start, and on PostgreSQL follows
 * the other nodes' writes (the change feed), writes back the renewals this node acknowledged from memory
 * while the database was unreachable, and bounds the table (reclaim). On SQLite this node is the only writer:
 * only the start applies.
 */
import type { Logger } from "../log.ts";
import type { LeaseRepository } from "../store/lease-repository.ts";
import type { Lease } from "../store/leases.ts";
import type { FullResponder } from "./full.ts";
import { type Renewal, RenewalJournal } from "./renewal-journal.ts";

/** How often a node reads the other nodes' writes: a stale view costs a NAK, never a second holder. */
export const FOLLOW_MS = 250;
/** Rows per change-feed read; a bigger backlog is read in several. */
const FEED_PAGE = 1000;
/** Ended leases are deleted this long after they ended (a client coming back within it finds its row). */
const RECLAIM_GRACE_MS = 24 * 3600_000;
const RECLAIM_EVERY_MS = 60_000;
const RECLAIM_LIMIT = 1000;

export interface LeaseSyncOptions {
  repository: LeaseRepository;
  responder: FullResponder;
  /** Whether the database answers now (the pool's state; its backoff probe brings it back). */
  available: () => boolean;
  /**
   * Where renewals acknowledged without the database are kept until written: on disk, fsynced, before the
   * ACK leaves, so they survive a crash or a power loss; undefined on SQLite, which is never unreachable.
   */
  replayFile: string | undefined;
  log: Logger;
  now?: () => number;
}

export class LeaseSync {
  private cursor = 0;
  private timer: NodeJS.Timeout | undefined;
  private busy: Promise<void> | undefined;
  private lastReclaim = 0;
  /** Renewals not yet in the database, by subnet and address (a later renewal replaces an earlier one). */
  private readonly pending = new Map<string, Renewal>();
  private readonly journal: RenewalJournal | undefined;
  private readonly now: () => number;
  /** Written to the database after an outage, and lost there to another client (should not happen). */
  replayed = 0;
  replayLost = 0;

  constructor(private readonly o: LeaseSyncOptions) {
    this.now = o.now ?? Date.now;
    this.journal = o.replayFile ? new RenewalJournal(o.replayFile, () => [...this.pending.values()], o.log) : undefined;
  }

  /** Fills the pools; on PostgreSQL starts following the feed (its cursor taken first: no write falls between). */
  async start(): Promise<void> {
    const { repository: repo, responder } = this.o;
    if (repo.engine === "postgres") this.cursor = await repo.cursor();
    responder.restore(await repo.all());
    if (repo.engine !== "postgres") return;
    for (const r of this.journal?.read() ?? []) this.pending.set(`${r.subnet} ${r.lease.ip}`, r);
    if (this.pending.size) {
      // Renewals this node acknowledged before it stopped: its view holds them again until they are written.
      responder.apply([...this.pending.values()].map((r) => ({ ...r.lease, subnet: r.subnet })));
      await this.tick();
    }
    this.timer = setInterval(() => void this.tick(), FOLLOW_MS);
    this.timer.unref();
  }

  /**
   * A renewal acknowledged from memory: resolves once it is in the journal on disk (the ACK waits for that),
   * written once the database answers. Rejects when the journal cannot be written: then no ACK.
   */
  record(subnet: string, lease: Lease): Promise<void> {
    this.pending.set(`${subnet} ${lease.ip}`, { subnet, lease: { ...lease, state: "bound" } });
    return this.journal?.save() ?? Promise.resolve();
  }

  /** Renewals still waiting for the database. */
  get waiting(): number {
    return this.pending.size;
  }

  /** One round: replay, then the feed, then (now and then) reclaim. Never two at once. */
  tick(): Promise<void> {
    this.busy ??= this.round().finally(() => (this.busy = undefined));
    return this.busy;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.busy;
    await this.journal?.close();
  }

  private async round(): Promise<void> {
    if (!this.o.available()) return;
    const { repository: repo, responder, log } = this.o;
    try {
      await this.replay();
      for (;;) {
        const page = await repo.changes(this.cursor, FEED_PAGE);
        this.cursor = page.cursor;
        responder.apply(page.leases);
        if (page.leases.length < FEED_PAGE) break;
      }
      if (this.now() - this.lastReclaim >= RECLAIM_EVERY_MS) {
        this.lastReclaim = this.now();
        await repo.reclaim(this.now(), RECLAIM_GRACE_MS, RECLAIM_LIMIT);
      }
    } catch (err) {
      // Unreachable: the database's backoff probe logs it and brings it back; the next round resumes.
      log.debug({ err }, "dhcp: lease feed round failed");
    }
  }

  private async replay(): Promise<void> {
    if (this.pending.size === 0) return;
    const { repository: repo, log } = this.o;
    for (const [key, r] of [...this.pending]) {
      const now = this.now();
      const left = r.lease.expiresAt - now;
      if (left > 0) {
        const result = await repo.bind({
          subnet: r.subnet,
          ip: r.lease.ip,
          mac: r.lease.mac,
          leaseMs: left,
          hostname: r.lease.hostname,
          now,
        });
        if (result.ok) this.replayed++;
        else {
          this.replayLost++;
          log.error(
            { subnet: r.subnet, ip: r.lease.ip, mac: r.lease.mac, holder: result.holder?.mac },
            "dhcp: a renewal acknowledged while the database was unreachable could not be written: another client holds the address",
          );
        }
      }
      // Only what was written (or has ended) leaves the journal; an error stops here and the rest waits.
      if (this.pending.get(key) === r) this.pending.delete(key);
    }
    log.info({ replayed: this.replayed }, "dhcp: renewals acknowledged during the database outage written");
    await this.journal?.save();
  }
}
