/**
 * Who gets a transfer slot. Pure policy over the transfers in flight, grouped by client IP: the server
 * asks before starting a transfer and does what the answer says.
 *
 * - A client below its own cap, on a server below its cap, is admitted.
 * - A client at its own cap is admitted only in place of one of its own stalled transfers (a machine that
 *   reset mid-boot asks again from a new port; its old transfers are dead).
 * - On a full server, a client is admitted in place of a stalled transfer of whoever holds the most
 *   transfers, as long as that is more than the asking client holds. Repeated, this evens the slots out
 *   between clients instead of letting whoever came first keep them.
 *
 * Only stalled transfers give way: a transfer whose client keeps acknowledging is never ended for someone
 * else, so a full server of healthy transfers drops new requests and their clients retry.
 */

export interface Limits {
  maxTransfers: number;
  maxTransfersPerClient: number;
}

/** `overdue(t)`: ms the transfer has gone without progress beyond its timeout; < 0 while it is not stalled. */
export type Overdue<T> = (t: T) => number;

export type Decision<T> =
  | { admit: true; evict?: T }
  /** `client`: the asking client is at its own cap; `server`: the server is full. */
  | { admit: false; full: "client" | "server" };

export class Slots<T> {
  private readonly byClient = new Map<string, Set<T>>();
  private total = 0;

  constructor(private readonly limits: Limits) {}

  get size(): number {
    return this.total;
  }

  add(client: string, t: T): void {
    let set = this.byClient.get(client);
    if (!set) {
      set = new Set();
      this.byClient.set(client, set);
    }
    if (set.has(t)) return;
    set.add(t);
    this.total++;
  }

  /** Idempotent: a transfer may be released by both its end and its replacement. */
  delete(client: string, t: T): void {
    const set = this.byClient.get(client);
    if (!set?.delete(t)) return;
    this.total--;
    if (set.size === 0) this.byClient.delete(client);
  }

  decide(client: string, overdue: Overdue<T>): Decision<T> {
    const own = this.byClient.get(client);
    const held = own?.size ?? 0;
    if (held >= this.limits.maxTransfersPerClient) {
      const victim = own && mostOverdue(own, overdue);
      return victim ? { admit: true, evict: victim.t } : { admit: false, full: "client" };
    }
    if (this.total < this.limits.maxTransfers) return { admit: true };
    let best: { t: T; by: number; held: number } | undefined;
    for (const set of this.byClient.values()) {
      if (set.size <= held || (best && set.size < best.held)) continue;
      const v = mostOverdue(set, overdue);
      if (v && (!best || set.size > best.held || v.by > best.by)) best = { ...v, held: set.size };
    }
    return best ? { admit: true, evict: best.t } : { admit: false, full: "server" };
  }
}

function mostOverdue<T>(set: Iterable<T>, overdue: Overdue<T>): { t: T; by: number } | undefined {
  let best: { t: T; by: number } | undefined;
  for (const t of set) {
    const by = overdue(t);
    if (by >= 0 && (!best || by > best.by)) best = { t, by };
  }
  return best;
}
