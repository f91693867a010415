import { describe, expect, it } from "vitest";
import { KeyedRate } from "../../src/limits/rate.ts";

describe("KeyedRate", () => {
  it("allows a burst, then the rate, per key", () => {
    const r = new KeyedRate(60, 3);
    const t0 = 1_000_000;
    expect([1, 2, 3, 4].map(() => r.take("a", t0))).toEqual([true, true, true, false]);
    expect(r.take("b", t0)).toBe(true);
    expect(r.take("a", t0 + 500)).toBe(false);
    expect(r.take("a", t0 + 1000)).toBe(true);
    // Refills up to the burst, no further.
    expect([1, 2, 3, 4].map(() => r.take("a", t0 + 3_600_000))).toEqual([true, true, true, false]);
  });

  it("keeps at most maxKeys, dropping the least recently used", () => {
    const r = new KeyedRate(1, 1, 2);
    expect(r.take("a", 0)).toBe(true);
    expect(r.take("b", 0)).toBe(true);
    expect(r.take("a", 0)).toBe(false); // a is now the most recent
    expect(r.take("c", 0)).toBe(true); // drops b
    expect(r.take("a", 0)).toBe(false);
    expect(r.take("b", 0)).toBe(true); // b was forgotten: a full bucket again
  });
});
