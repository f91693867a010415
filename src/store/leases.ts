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

/** Full-mode DHCP leases; the allocator keeps them in memory and writes through here. */
export class LeaseStore {
  private readonly upsert;
  private readonly remove;
  private readonly reserved;

  constructor(private readonly db: Db) {
    this.upsert = db.prepare(
      `INSERT INTO leases (ip, mac, state, expires_at, hostname, updated_at) VALUES (@ip, @mac, @state, @expiresAt, @hostname, @updatedAt)
       ON CONFLICT(ip) DO UPDATE SET mac = excluded.mac, state = excluded.state, expires_at = excluded.expires_at,
         hostname = excluded.hostname, updated_at = excluded.updated_at`,
    );
    this.remove = db.prepare("DELETE FROM leases WHERE ip = ?");
    this.reserved = db.prepare("SELECT ip, mac FROM machines WHERE ip IS NOT NULL");
  }

  all(): Lease[] {
    return (this.db.prepare("SELECT * FROM leases ORDER BY ip").all() as Row[]).map(toLease);
  }

  put(lease: Lease): void {
    this.upsert.run(lease);
  }

  delete(ip: string): void {
    this.remove.run(ip);
  }

  /** Static reservations (`machines.ip`), ip → mac. */
  reservations(): Map<string, string> {
    return new Map((this.reserved.all() as { ip: string; mac: string }[]).map((r) => [r.ip, r.mac]));
  }
}
