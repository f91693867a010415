/**
 * Address allocation for one subnet. The pool keeps the policy (which address to offer) and a view of the
 * leases in memory, so a DISCOVER never waits for the database; the lease repository (SQLite file of one
 * node, or PostgreSQL shared by several) decides every bind, release and decline, and the view learns from
 * its answers and, on PostgreSQL, from the other nodes' writes (apply()). Offers stay in memory.
 */
import type { LeaseRepository } from "../store/lease-repository.ts";
import type { Lease } from "../store/leases.ts";
import type { SubnetConfig } from "./config.ts";
import { type Cidr, inCidr, intToIp, ipToInt, parseCidr } from "./ip.ts";

/** How long a full pool is taken at its word before it is scanned again (reservations may have changed). */
const EXHAUSTED_RECHECK_MS = 1000;

export type BindResult = { ok: true; lease: Lease } | { ok: false; reason: string };
export type DeclineResult = { ok: true; released: string | undefined } | { ok: false; reason: string };

export class SubnetPool {
  readonly cidr: Cidr;
  private readonly ranges: [number, number][];
  /** Addresses in the ranges. */
  readonly size: number;
  private readonly leases = new Map<number, Lease>();
  private readonly byMac = new Map<string, number>();
  /**
   * Addresses held by an offer, oldest first. Offers need not be reserved (RFC 2131 3.1): once nothing else is
   * free, a new client takes over the oldest one, so a flood of DISCOVERs from made-up MACs cannot hold the
   * whole pool for `offerSeconds`.
   */
  private readonly offers = new Set<number>();
  /** Declined addresses, oldest first: the first to end early when the cap is reached. */
  private readonly quarantine = new Set<number>();
  /** Next-fit cursor: new addresses are handed out in order instead of rescanning from the start. */
  private cursor = 0;
  /**
   * Set when a scan found nothing: no address can free up before then (the earliest expiry it saw, at most
   * EXHAUSTED_RECHECK_MS ahead, since reservations may change), unless a release or a withdrawn offer frees
   * one, which clears it. Without it every DISCOVER to a full pool scanned the whole pool twice: a flood of
   * new clients on a full /16 cost milliseconds each and took the server down with it.
   */
  private exhaustedUntil = 0;

  /**
   * `startAt`: where the next-fit cursor starts (an index into the ranges). Nodes sharing a database start
   * at different places, so that their first offers seldom name the same address.
   */
  constructor(
    readonly config: SubnetConfig,
    private readonly repo: LeaseRepository,
    private readonly now: () => number = Date.now,
    startAt = 0,
  ) {
    this.cidr = parseCidr(config.cidr);
    this.ranges = config.ranges.map((r) => [ipToInt(r.start), ipToInt(r.end)]);
    this.size = this.ranges.reduce((n, [a, b]) => n + (b - a + 1), 0);
    this.cursor = this.size ? Math.abs(Math.floor(startAt)) % this.size : 0;
  }

  contains(ip: string): boolean {
    return inCidr(this.cidr, ip);
  }

  inRange(ip: string): boolean {
    const n = ipToInt(ip);
    return this.ranges.some(([a, b]) => n >= a && n <= b);
  }

  /** Puts a persisted lease back after a restart; declined ones in the order they were declined. */
  restore(lease: Lease): void {
    const n = ipToInt(lease.ip);
    this.leases.set(n, lease);
    if (lease.state === "declined") {
      if (lease.expiresAt > this.now()) this.quarantine.add(n);
    } else if (lease.mac) this.byMac.set(lease.mac, n);
  }

  /**
   * A row another node wrote (PostgreSQL's change feed) replaces what the view held for its address,
   * unless the view holds a newer write (its own, answered while the feed's query ran).
   */
  apply(lease: Lease): void {
    const n = ipToInt(lease.ip);
    const held = this.leases.get(n);
    if (held && held.state !== "offered" && held.updatedAt > lease.updatedAt) return;
    if (held?.state === "offered" && held.mac === lease.mac && lease.state !== "bound") return;
    this.hold(n, lease);
    if (lease.state === "released" || lease.expiresAt <= this.now()) this.exhaustedUntil = 0;
  }

  /**
   * Puts `lease` at its address, ending whatever held the address before: an offer to another client loses
   * it (that client's REQUEST is NAKed and it starts over), a quarantine ends.
   */
  private hold(n: number, lease: Lease): void {
    const before = this.leases.get(n);
    if (before && this.byMac.get(before.mac) === n) this.byMac.delete(before.mac);
    this.offers.delete(n);
    this.quarantine.delete(n);
    this.leases.set(n, lease);
    if (lease.state === "offered") this.offers.add(n);
    // A released address stays linked to its client, who gets it back first if it is still free.
    if (lease.state === "declined") this.quarantine.add(n);
    else if (lease.mac) this.byMac.set(lease.mac, n);
  }

  /** The client's current (unexpired, not released) lease or offer. */
  current(mac: string): Lease | undefined {
    const n = this.byMac.get(mac);
    const l = n === undefined ? undefined : this.leases.get(n);
    return l && l.mac === mac && (l.state === "bound" || l.state === "offered") && l.expiresAt > this.now()
      ? l
      : undefined;
  }

  /** Whether `ip` can go to `mac` now; `reservations` maps reserved ip → mac. */
  private availableTo(n: number, mac: string, reservations: Map<string, string>): boolean {
    // Reservations are keyed by dotted quad; most networks have none, and the string is not free.
    const holder = reservations.size ? reservations.get(intToIp(n)) : undefined;
    if (holder !== undefined && holder !== mac) return false;
    const l = this.leases.get(n);
    if (!l) return true;
    if (l.state === "declined") return l.expiresAt <= this.now();
    return l.mac === mac || l.state === "released" || l.expiresAt <= this.now();
  }

  /** Whether `mac` may bind `n`: free, or only offered to someone else (offers are not reservations). */
  private bindableBy(n: number, mac: string, reservations: Map<string, string>): boolean {
    if (this.availableTo(n, mac, reservations)) return true;
    const l = this.leases.get(n)!;
    const holder = reservations.size ? reservations.get(intToIp(n)) : undefined;
    return l.state === "offered" && (holder === undefined || holder === mac);
  }

  private indexToInt(i: number): number {
    for (const [a, b] of this.ranges) {
      if (i <= b - a) return a + i;
      i -= b - a + 1;
    }
    throw new Error("pool index out of range");
  }

  /**
   * Chooses an address for a DISCOVER: the client's own lease, its reservation, the address it asks for,
   * then never-used addresses, then expired ones, then the oldest offer to another client. No ICMP probe:
   * conflicts come back as DECLINE.
   */
  choose(mac: string, opts: { requested?: string | undefined; reservations: Map<string, string> }): string | undefined {
    const mine = this.byMac.get(mac);
    if (
      mine !== undefined &&
      this.leases.get(mine)?.state !== "declined" &&
      this.availableTo(mine, mac, opts.reservations)
    )
      return intToIp(mine);
    for (const [ip, holder] of opts.reservations) if (holder === mac && this.contains(ip)) return ip;
    if (
      opts.requested &&
      this.inRange(opts.requested) &&
      this.availableTo(ipToInt(opts.requested), mac, opts.reservations)
    )
      return opts.requested;
    const now = this.now();
    if (now < this.exhaustedUntil) return this.oldestOffer(opts.reservations);
    let nextExpiry = now + EXHAUSTED_RECHECK_MS;
    for (const pass of ["unused", "expired"] as const) {
      for (let k = 0; k < this.size; k++) {
        const i = (this.cursor + k) % this.size;
        const n = this.indexToInt(i);
        const free =
          pass === "unused"
            ? !this.leases.has(n) && (opts.reservations.size === 0 || !opts.reservations.has(intToIp(n)))
            : this.availableTo(n, mac, opts.reservations);
        if (free) {
          this.cursor = (i + 1) % this.size;
          return intToIp(n);
        }
        if (pass === "expired") nextExpiry = Math.min(nextExpiry, this.leases.get(n)?.expiresAt ?? nextExpiry);
      }
    }
    this.exhaustedUntil = nextExpiry;
    return this.oldestOffer(opts.reservations);
  }

  private oldestOffer(reservations: Map<string, string>): string | undefined {
    for (const n of this.offers) {
      // A reserved address is offered only to its holder, and stays theirs.
      if (reservations.size && reservations.has(intToIp(n))) continue;
      return intToIp(n);
    }
    return undefined;
  }

  /** Holds `ip` for `mac` until the REQUEST comes (memory only). */
  offer(mac: string, ip: string, holdMs: number): Lease {
    const n = ipToInt(ip);
    const existing = this.leases.get(n);
    // Re-offering a bound lease to its owner must not shorten or downgrade it.
    if (existing && existing.mac === mac && existing.state === "bound" && existing.expiresAt > this.now())
      return existing;
    const lease: Lease = {
      ip,
      mac,
      state: "offered",
      expiresAt: this.now() + holdMs,
      hostname: null,
      updatedAt: this.now(),
    };
    // An earlier offer to this client elsewhere in the pool is withdrawn: one client, one offer.
    this.cancelOffer(mac);
    this.hold(n, lease);
    return lease;
  }

  /**
   * Binds `ip` to `mac` (REQUEST in any state) through the repository, which decides: the view may be stale
   * (another node's write not seen yet), so it is not asked. While the write is on its way the address is
   * held as an offer to `mac`, so this node does not offer it to someone else meanwhile. Rejects with the
   * repository's error (database unreachable) after putting the view back.
   */
  async bind(
    mac: string,
    ip: string,
    leaseMs: number,
    hostname: string | null,
    reservations: Map<string, string>,
  ): Promise<BindResult> {
    const refused = this.refuse(mac, ip, reservations);
    if (refused) return { ok: false, reason: refused };
    const n = ipToInt(ip);
    const now = this.now();
    const before = this.leases.get(n);
    const mine = this.byMac.get(mac);
    if (mine !== undefined && mine !== n) this.cancelOffer(mac);
    // Already held for the client (its lease, or this node's offer of it): nothing to hold meanwhile.
    const held = before !== undefined && before.mac === mac && (before.state === "bound" || before.state === "offered");
    const pending = !held && this.bindableBy(n, mac, reservations);
    if (pending) this.hold(n, { ip, mac, state: "offered", expiresAt: now + leaseMs, hostname, updatedAt: now });
    let r: Awaited<ReturnType<LeaseRepository["bind"]>>;
    try {
      r = await this.repo.bind({ subnet: this.config.cidr, ip, mac, leaseMs, hostname, now });
    } catch (err) {
      if (pending) this.unhold(n, mac, before);
      throw err;
    }
    if (r.ok) {
      this.hold(n, r.lease);
      return { ok: true, lease: r.lease };
    }
    if (r.holder) this.hold(n, r.holder);
    else if (pending) this.unhold(n, mac, before);
    return {
      ok: false,
      reason: r.holder ? `${ip} is held by ${r.holder.mac || "a decline"}` : `${ip} was just taken by another client`,
    };
  }

  /**
   * The client's own unexpired bound lease on `ip`, as the view knows it: what a node may renew from memory
   * while the database is unreachable.
   */
  known(mac: string, ip: string): Lease | undefined {
    const l = this.leases.get(ipToInt(ip));
    return l && l.mac === mac && l.state === "bound" && l.expiresAt > this.now() ? l : undefined;
  }

  /** Extends a known lease in the view only (database unreachable; the caller records it for replay). */
  renewInMemory(lease: Lease, leaseMs: number, hostname: string | null): Lease {
    const now = this.now();
    const renewed: Lease = { ...lease, expiresAt: now + leaseMs, hostname: hostname ?? lease.hostname, updatedAt: now };
    this.hold(ipToInt(lease.ip), renewed);
    return renewed;
  }

  /** Why `mac` may not have `ip` by configuration alone (outside the subnet or ranges, reserved for another). */
  refuse(mac: string, ip: string, reservations: Map<string, string>): string | undefined {
    if (!this.contains(ip)) return `${ip} is not in ${this.config.cidr}`;
    const reservedFor = reservations.get(ip);
    if (reservedFor !== undefined && reservedFor !== mac) return `${ip} is reserved for ${reservedFor}`;
    if (reservedFor === undefined && !this.inRange(ip)) return `${ip} is outside the ranges of ${this.config.cidr}`;
    return undefined;
  }

  /** Takes back the offer bind() put at `n`, if nothing replaced it meanwhile. */
  private unhold(n: number, mac: string, before: Lease | undefined): void {
    const l = this.leases.get(n);
    if (!l || l.mac !== mac || l.state !== "offered") return;
    this.cancelOffer(mac);
    if (before && before.state !== "offered") this.hold(n, before);
  }

  /** Drops an unanswered offer (the client chose another server). */
  cancelOffer(mac: string): void {
    const n = this.byMac.get(mac);
    const l = n === undefined ? undefined : this.leases.get(n);
    if (n !== undefined && l?.state === "offered" && l.mac === mac) {
      this.leases.delete(n);
      this.byMac.delete(mac);
      this.offers.delete(n);
      this.exhaustedUntil = 0;
    }
  }

  /** RELEASE: asks the repository even when the view does not know the lease (another node may have bound it). */
  async release(mac: string, ip: string): Promise<boolean> {
    const now = this.now();
    if (!(await this.repo.release(this.config.cidr, mac, ip, now))) return false;
    const n = ipToInt(ip);
    const l = this.leases.get(n);
    const base = l && l.mac === mac ? l : { ip, mac, hostname: null };
    this.hold(n, { ...base, state: "released", expiresAt: now, updatedAt: now });
    this.exhaustedUntil = 0;
    return true;
  }

  /**
   * A client reports `ip` in use by another host (RFC 2131 4.3.3). Only the client the address is offered or
   * leased to can say so; then the address is quarantined for `ms`. At most `max` addresses are quarantined
   * at once: past that the oldest quarantine ends early (its address is named in the result).
   */
  async decline(mac: string, ip: string, ms: number, max: number): Promise<DeclineResult> {
    if (!this.inRange(ip)) return { ok: false, reason: `${ip} is outside the ranges of ${this.config.cidr}` };
    const n = ipToInt(ip);
    const l = this.leases.get(n);
    if (!l || l.mac !== mac || (l.state !== "offered" && l.state !== "bound") || l.expiresAt <= this.now())
      return { ok: false, reason: `${ip} is not offered or leased to ${mac}` };
    const now = this.now();
    const r = await this.repo.decline({
      subnet: this.config.cidr,
      ip,
      mac,
      quarantineMs: ms,
      maxQuarantined: max,
      now,
    });
    if (!r.ok) {
      if (r.holder) this.hold(n, r.holder);
      return { ok: false, reason: `${ip} is held by ${r.holder?.mac || "another client"}` };
    }
    for (const freed of r.released) {
      const q = ipToInt(freed);
      const held = this.leases.get(q);
      this.quarantine.delete(q);
      this.leases.set(q, {
        ...(held ?? { ip: freed, hostname: null }),
        mac: "",
        state: "released",
        expiresAt: now,
        updatedAt: now,
      });
    }
    this.hold(n, r.lease);
    this.exhaustedUntil = 0;
    return { ok: true, released: r.released[0] };
  }

  /** Addresses quarantined by DECLINE right now. */
  quarantined(): number {
    const now = this.now();
    let live = 0;
    for (const q of this.quarantine) if ((this.leases.get(q)?.expiresAt ?? 0) > now) live++;
    return live;
  }

  stats(): { subnet: string; used: number; free: number; quarantined: number } {
    const now = this.now();
    let used = 0;
    for (const [n, l] of this.leases) {
      const inRange = this.ranges.some(([a, b]) => n >= a && n <= b);
      if (inRange && l.state !== "released" && l.expiresAt > now) used++;
    }
    return { subnet: this.config.cidr, used, free: this.size - used, quarantined: this.quarantined() };
  }
}
