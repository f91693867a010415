/**
 * Full-mode DHCP leases as both engines serve them: the SQLite file of one node (sqlite-lease-repository.ts)
 * and a PostgreSQL database shared by several (pg/leases.ts). Every write is atomic on its own and resolves
 * only once it is committed, so a caller that awaits it before sending the ACK never acknowledges a lease
 * that a crash could lose. An address goes to a client only when nobody else holds it: a lease another
 * client holds (bound and unexpired) or a quarantine (declined and unexpired) wins over every later writer,
 * on whichever node that writer runs.
 *
 * `subnet` is the subnet's CIDR exactly as configured (`10.0.0.0/24`): nodes sharing a database must
 * configure the same subnets. `now` is the caller's clock in unix ms; nodes are expected to keep their
 * clocks in sync (NTP): a skew of s seconds lengthens or shortens other nodes' view of a lease by s.
 */
import type { Lease } from "./leases.ts";

export type { Lease, LeaseState } from "./leases.ts";

export interface BindRequest {
  subnet: string;
  ip: string;
  mac: string;
  leaseMs: number;
  hostname: string | null;
  now: number;
}

/**
 * `holder`: the lease that kept the address from the client (another client's, or a quarantine), for the
 * caller's cache; undefined when the address was free but the write still lost (it then was taken between).
 */
export type BindResult = { ok: true; lease: Lease } | { ok: false; holder: Lease | undefined };

export interface AllocateRequest extends Omit<BindRequest, "ip"> {
  /** Addresses to try, best first (the pool's choice: the client's own, its reservation, next-fit ...). */
  candidates: readonly string[];
}

/**
 * On success the candidates before `lease.ip` were held by others. On failure `taken` holds the leases that
 * kept each candidate away (for the caller's cache); a candidate missing from it was lost to a race too often.
 */
export type AllocateResult = { ok: true; lease: Lease } | { ok: false; taken: Lease[] };

export interface DeclineRequest {
  subnet: string;
  ip: string;
  mac: string;
  /** How long the address stays out of use. */
  quarantineMs: number;
  /** At most this many addresses of the subnet quarantined at once: past it, the oldest quarantines end. */
  maxQuarantined: number;
  now: number;
}

/** `released`: addresses whose quarantine ended early to respect maxQuarantined. */
export type DeclineResult = { ok: true; lease: Lease; released: string[] } | { ok: false; holder: Lease | undefined };

export interface LeaseChanges {
  leases: (Lease & { subnet: string })[];
  /** Pass back to changes() to get only later writes. */
  cursor: number;
}

export interface LeaseRepository {
  readonly engine: "sqlite" | "postgres";
  /**
   * REQUEST (selecting, renewing, rebinding, init-reboot): the address becomes the client's until
   * now + leaseMs, if it is free, expired, released, or already the client's. Renewal on any node is this
   * call: the row names the client, so the write succeeds wherever it runs.
   */
  bind(req: BindRequest): Promise<BindResult>;
  /** Binds the first candidate nobody else holds; tries at most all of them. */
  allocate(req: AllocateRequest): Promise<AllocateResult>;
  /** RELEASE: ends the client's bound lease now; the address stays linked to it (it gets it back first). */
  release(subnet: string, mac: string, ip: string, now: number): Promise<boolean>;
  /**
   * DECLINE (RFC 2131 4.3.3): only a client the address could go to (its own lease, or a free address it
   * was offered) can quarantine it; the quarantine is a row every node sees and honours.
   */
  decline(req: DeclineRequest): Promise<DeclineResult>;
  /**
   * Deletes up to `limit` leases that ended more than `graceMs` ago (expired, released, quarantine over):
   * a row's address is reusable from the moment it ends either way; this only bounds the table.
   */
  reclaim(now: number, graceMs: number, limit: number): Promise<number>;
  get(subnet: string, ip: string): Promise<Lease | undefined>;
  /** Every lease row, for a node that (re)starts and fills its pools' caches. */
  all(): Promise<Lease[]>;
  /**
   * Rows any node wrote from `cursor` on (PostgreSQL), to keep a node's cache current; SQLite has no other
   * writer and returns none. A row may come twice; applying it again changes nothing.
   */
  changes(cursor: number, limit: number): Promise<LeaseChanges>;
  /** Where changes() starts for a node about to read all(): take it first, so nothing falls in between. */
  cursor(): Promise<number>;
  /** Static reservations (`machines.ip`), ip → mac. */
  reservations(): Promise<Map<string, string>>;
  /** The address a MAC holds a live lease on (who may fetch its config). */
  boundIp(mac: string, now: number): Promise<string | undefined>;
  /** Commits what is queued and stops taking writes. */
  close(): Promise<void>;
}

/**
 * Whether `mac` may take an address whose row is `row` at `now`: the one rule both engines apply (SQLite in
 * code below, PostgreSQL in the WHERE of pg/leases.ts's upsert). A quarantine binds even the client that
 * declined: it said the address is in use by someone else.
 */
export function takeable(row: Lease | undefined, mac: string, now: number): boolean {
  if (!row) return true;
  if (row.state === "declined") return row.expiresAt <= now;
  return row.mac === mac || row.state === "released" || row.expiresAt <= now;
}
