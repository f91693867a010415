import { describe, expect, it } from "vitest";
import { bootStory } from "../../src/http/ui/timeline.ts";

describe("boot story", () => {
  it("says how many requests a counted row stands for", () => {
    const story = bootStory([
      {
        id: 1,
        mac: null,
        kind: "ipxe.request",
        detail: { outcome: "wait", profile: null },
        at: "2030-01-01T00:00:00.000Z",
        node: null,
      },
      {
        id: 2,
        mac: null,
        kind: "ipxe.request",
        detail: { outcome: "wait", profile: null, repeated: 3, windowSeconds: 60 },
        at: "2030-01-01T00:01:00.000Z",
        node: null,
      },
    ]);
    expect(story.map((s) => s.summary)).toEqual([
      "answer: wait · no profile",
      "answer: wait · no profile · 3 more like it within 60 s",
    ]);
  });
});
