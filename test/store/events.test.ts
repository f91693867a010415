import { describe, expect, it } from "vitest";
import { openDb } from "../../src/store/db.ts";
import { EventStore } from "../../src/store/events.ts";

describe("event retention", () => {
  it("prune deletes events older than the retention and keeps the rest", async () => {
    const db = openDb(":memory:");
    const events = new EventStore(db);
    events.append({ kind: "old" });
    events.append({ kind: "new" });
    db.prepare("UPDATE events SET at = ? WHERE kind = 'old'").run(new Date(Date.now() - 91 * 86_400_000).toISOString());
    expect(await events.prune(90)).toBe(1);
    expect((await events.list()).map((e) => e.kind)).toEqual(["new"]);
    expect(await events.prune(90)).toBe(0);
    db.close();
  });
});
