import { describe, expect, it } from "vitest";
import {
  ANSWER_CACHE_MAX_BODY,
  ANSWER_CACHE_MAX_KEY,
  AnswerCache,
  type CachedAnswer,
} from "../../src/http/fast/answer-cache.ts";

const answer = (body = "#!ipxe\n"): CachedAnswer => ({
  status: 200,
  body,
  mac: "52:54:00:00:00:01",
  occurrence: { kind: "ipxe.request", client: "10.0.0.1", reason: "boot p", detail: {}, message: "boot request" },
});

describe("AnswerCache", () => {
  it("answers while the write generation is the one rendered under and the entry is young", () => {
    const c = new AnswerCache(4, 1000);
    const a = answer();
    c.set("k", a, 7, 0);
    expect(c.get("k", 7, 999)).toBe(a);
    expect(c.get("k", 8, 999)).toBeUndefined();
    // A miss drops the entry: the generation does not come back.
    expect(c.get("k", 7, 999)).toBeUndefined();
    c.set("k", a, 7, 0);
    expect(c.get("k", 7, 1000)).toBeUndefined();
    expect(c.size).toBe(0);
  });

  it("holds at most maxEntries, dropping the oldest, and leaves long keys and long scripts out", () => {
    const c = new AnswerCache(3, 1000);
    for (let i = 0; i < 10; i++) c.set(`k${i}`, answer(), 1, 0);
    expect(c.size).toBe(3);
    expect(c.get("k6", 1, 0)).toBeUndefined();
    expect(c.get("k9", 1, 0)).toBeDefined();
    c.set("x".repeat(ANSWER_CACHE_MAX_KEY + 1), answer(), 1, 0);
    c.set("long", answer("x".repeat(ANSWER_CACHE_MAX_BODY + 1)), 1, 0);
    expect(c.get("x".repeat(ANSWER_CACHE_MAX_KEY + 1), 1, 0)).toBeUndefined();
    expect(c.get("long", 1, 0)).toBeUndefined();
  });
});
