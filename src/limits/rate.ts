/**
 * Per-client token buckets: each key may spend `burst` at once and earns them back at `perMinute`. Keys are
 * client addresses anyone can vary, so at most `maxKeys` are kept; the least recently used one is dropped
 * first (a dropped key starts again with a full bucket, which costs an attacker a fresh address each time).
 */
export class KeyedRate {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly perMinute: number,
    private readonly burst = perMinute,
    private readonly maxKeys = 10_000,
  ) {}

  /** Spends one token for `key`; false when it has none left. */
  take(key: string, now = Date.now()): boolean {
    const b = this.buckets.get(key) ?? { tokens: this.burst, at: now };
    this.buckets.delete(key); // re-inserted below: Map order is the eviction order
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) * this.perMinute) / 60_000);
    b.at = now;
    const ok = b.tokens >= 1;
    if (ok) b.tokens -= 1;
    this.buckets.set(key, b);
    if (this.buckets.size > this.maxKeys) this.buckets.delete(this.buckets.keys().next().value!);
    return ok;
  }
}
