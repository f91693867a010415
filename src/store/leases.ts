import type { Db } from "./db.ts";

/** `offered` leases live only in memory (a lost offer costs one retry); the others are persisted. */
export type LeaseState = "offered" | "bound" | "declined" | "released";

export interface Lease {
  ip: string;
  /** Client hardware address; empty for an address declined by nobody we know. */
  mac: string;
  state: LeaseState;
  /** Unix ms. */
  expiresAt: number;
  hostname: string | null;
  updatedAt: number;
}

const RESERVATION_TTL_MS = 1000;

interface Row {
  ip: string;
  mac: string;
  state: string;
  expires_at: number;
  hostname: string | null;
  updated_at: number;
}

const toLease = (r: Row): Lease => ({
  ip: r.ip,
  mac: r.mac,
  state: r.state as LeaseState,
  expiresAt: r.expires_at,
  hostname: r.hostname,
  updatedAt: r.updated_at,
});

/**
 * Full-mode DHCP leases; the allocator keeps them in memory and writes through here. Writes are queued and
 * committed together by flush() (group commit): the DHCP server flushes at most every few milliseconds and
 * sends its ACKs only after the commit, so every ACKed lease is on disk without one transaction per lease.
 */
export class LeaseStore {
  private readonly upsert;
  private readonly remove;
  private readonly reserved;
  private readonly pending = new Map<string, Lease>();
  private queued = 0;
  private readonly commit;
  /** Reservations are re-read at most every RESERVATION_TTL_MS: an operator's change applies within that. */
  private reservationCache: { at: number; map: Map<string, string> } | undefined;

  constructor(private readonly db: Db) {
    this.upsert = db.prepare(
      `INSERT INTO leases (ip, mac, state, expires_at, hostname, updated_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT(ip) DO UPDATE SET mac = excluded.mac, state = excluded.state, expires_at = excluded.expires_at,
         hostname = excluded.hostname, updated_at = excluded.updated_at`,
    );
    this.remove = db.prepare("DELETE FROM leases WHERE ip = ?");
    this.reserved = db.prepare("SELECT ip, mac FROM machines WHERE ip IS NOT NULL");
    this.commit = db.transaction((leases: Lease[]) => {
      // Positional parameters: binding by name costs a property lookup per column per row.
      for (const l of leases) this.upsert.run(l.ip, l.mac, l.state, l.expiresAt, l.hostname, l.updatedAt);
    });
  }

  all(): Lease[] {
    this.flush();
    return (this.db.prepare("SELECT * FROM leases ORDER BY ip").all() as Row[]).map(toLease);
  }

  /** Queues a lease write; the last write per address wins. */
  put(lease: Lease): void {
    this.pending.set(lease.ip, lease);
    this.queued++;
  }

  /** How many writes were ever queued: a caller compares it before and after some work to see if it wrote. */
  get writes(): number {
    return this.queued;
  }

  /** Commits queued writes in one transaction. */
  flush(): void {
    if (this.pending.size === 0) return;
    const leases = [...this.pending.values()];
    this.pending.clear();
    this.commit(leases);
  }

  delete(ip: string): void {
    this.pending.delete(ip);
    this.remove.run(ip);
  }

  /** Static reservations (`machines.ip`), ip → mac. */
  reservations(): Map<string, string> {
    const now = Date.now();
    if (!this.reservationCache || now - this.reservationCache.at >= RESERVATION_TTL_MS) {
      this.reservationCache = {
        at: now,
        map: new Map((this.reserved.all() as { ip: string; mac: string }[]).map((r) => [r.ip, r.mac])),
      };
    }
    return this.reservationCache.map;
  }

  /** The address a MAC holds a live, committed lease on (for checking who fetches its config). */
  boundIp(mac: string, now = Date.now()): string | undefined {
    const row = this.db
      .prepare(
        "SELECT ip FROM leases WHERE mac = ? AND state = 'bound' AND expires_at > ? ORDER BY updated_at DESC LIMIT 1",
      )
      .get(mac, now) as { ip: string } | undefined;
    return row?.ip;
  }
}
