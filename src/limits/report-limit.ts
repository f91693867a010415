/**
 * Reports of one kind (a full pool, a declined address) at most once per interval per key (a subnet), each
 * saying how many occurrences it stands for. A broken or hostile client can repeat what causes them as fast as
 * it can send: the log and the events table grow by one line per interval, not one per packet.
 */
export class ReportLimiter<K> {
  private readonly state = new Map<K, { at: number; count: number }>();

  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number,
  ) {}

  /** Counts one occurrence; when a report is due, returns how many it covers (this one included). */
  hit(key: K): number | undefined {
    let s = this.state.get(key);
    if (!s) this.state.set(key, (s = { at: -Infinity, count: 0 }));
    s.count++;
    const now = this.now();
    if (now - s.at < this.intervalMs) return undefined;
    const count = s.count;
    s.at = now;
    s.count = 0;
    return count;
  }
}
