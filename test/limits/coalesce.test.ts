import { Writable } from "node:stream";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { clipDetail, clipText } from "../../src/limits/clip.ts";
import { CoalescedLog, type Occurrence } from "../../src/limits/coalesce.ts";
import { openDb } from "../../src/store/db.ts";
import { EventStore } from "../../src/store/events.ts";

function setup(maxKeys = 4) {
  const db = openDb(":memory:");
  const events = new EventStore(db);
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split("\n").filter(Boolean)) lines.push(JSON.parse(l));
      done();
    },
  });
  const log = pino({ level: "info" }, sink);
  // A window longer than any test: windows end when the test calls flush().
  const refusals = new CoalescedLog({ events, log, windowMs: 3_600_000, maxKeys });
  const all = async () => (await events.list({ limit: 10_000 })).reverse();
  return { refusals, all, lines, close: () => (refusals.close(), db.close()) };
}

const refusal = (client: string, reason = "file not found", file = "x.bin"): Occurrence => ({
  kind: "tftp.failed",
  client,
  reason,
  detail: { ip: client, file, error: reason },
  message: "tftp request refused",
});

describe("CoalescedLog", () => {
  it("capturing() hands back what a call recorded, as given, and still records it", async () => {
    const t = setup();
    const a = refusal("10.0.0.1");
    const b = refusal("10.0.0.2", "access violation");
    const { value, recorded } = t.refusals.capturing(() => {
      t.refusals.record(a);
      t.refusals.record(b);
      return 7;
    });
    expect(value).toBe(7);
    expect(recorded).toEqual([a, b]);
    expect(await t.all()).toHaveLength(2);
    // Outside a capture nothing is kept; a nested capture's records count for the outer one too.
    t.refusals.record(a);
    const outer = t.refusals.capturing(() => t.refusals.capturing(() => t.refusals.record(b)).recorded);
    expect(outer.value).toEqual([b]);
    expect(outer.recorded).toEqual([b]);
    t.close();
  });

  it("writes the first refusal at once and counts the rest of the window in one row", async () => {
    const t = setup();
    for (let i = 0; i < 10_000; i++) t.refusals.record(refusal("10.0.0.9", "file not found", `f${i}`));
    expect((await t.all()).map((e) => e.detail)).toEqual([{ ip: "10.0.0.9", file: "f0", error: "file not found" }]);
    t.refusals.flush();
    expect((await t.all()).map((e) => e.detail.repeated)).toEqual([undefined, 9_999]);
    await new Promise((r) => setImmediate(r));
    expect(t.lines.map((l) => l.msg)).toEqual([
      "tftp request refused",
      "tftp request refused (9999 more like it within 3600 s)",
    ]);
    t.close();
  });

  it("keeps a busy key to one row per window and treats a key quiet for a window as new", async () => {
    const t = setup();
    t.refusals.record(refusal("10.0.0.9"));
    t.refusals.record(refusal("10.0.0.9"));
    t.refusals.flush(); // first + summary
    t.refusals.record(refusal("10.0.0.9"));
    t.refusals.record(refusal("10.0.0.9"));
    t.refusals.flush(); // summary only: the key was busy in the last window
    t.refusals.flush(); // quiet: forgotten, nothing written
    t.refusals.record(refusal("10.0.0.9")); // news again
    expect((await t.all()).map((e) => e.detail.repeated ?? 0)).toEqual([0, 1, 2, 0]);
    t.close();
  });

  it("counts different clients and reasons apart, and shares one count per kind beyond maxKeys", async () => {
    const t = setup(4);
    for (let round = 0; round < 3; round++)
      for (let i = 0; i < 100; i++) t.refusals.record(refusal(`10.0.${i}.1`, i % 2 ? "file not found" : "NUL"));
    t.refusals.flush();
    const rows = await t.all();
    // 4 keys + 1 overflow key, each written once at first sight and once with its count.
    expect(rows).toHaveLength(10);
    expect(rows.filter((e) => e.detail.overflow)).toHaveLength(2);
    expect(rows.reduce((n, e) => n + 1 + ((e.detail.repeated as number | undefined) ?? 0), 0) - 5).toBe(300);
    t.close();
  });

  it("keeps one machine's story in order: a new outcome first writes the count of the previous one", async () => {
    const t = setup();
    const ipxe = (outcome: string): Occurrence => ({
      kind: "ipxe.request",
      client: "10.0.0.9",
      mac: "52:54:00:00:00:01",
      reason: outcome,
      detail: { outcome },
      message: "boot request",
    });
    for (let i = 0; i < 5; i++) t.refusals.record(ipxe("wait"));
    t.refusals.record(ipxe("boot"));
    t.refusals.flush();
    expect((await t.all()).map((e) => [e.detail.outcome, e.detail.repeated ?? 0])).toEqual([
      ["wait", 0],
      ["wait", 4],
      ["boot", 0],
    ]);
    t.close();
  });

  it("writes what is pending on close", async () => {
    const t = setup();
    t.refusals.record(refusal("10.0.0.9"));
    t.refusals.record(refusal("10.0.0.9"));
    t.refusals.close();
    expect((await t.all()).map((e) => e.detail.repeated ?? 0)).toEqual([0, 1]);
    t.close();
  });

  it("clips long client-supplied names and keeps their length", async () => {
    const t = setup();
    t.refusals.record(refusal("10.0.0.9", "file not found", "a".repeat(65_000)));
    const [e] = await t.all();
    expect(e!.detail.file).toBe("a".repeat(256));
    expect(e!.detail.fileBytes).toBe(65_000);
    t.close();
  });
});

describe("clip", () => {
  it("cuts on a character boundary", () => {
    expect(clipText("é".repeat(200), 255)).toBe("é".repeat(127));
    expect(clipText("short")).toBe("short");
  });
  it("bounds objects' entries and leaves other values alone", () => {
    const options = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${i}`, "v".repeat(300)]));
    const out = clipDetail({ options, n: 5, list: [1, 2] });
    expect(Object.keys(out.options as object)).toHaveLength(32);
    expect((out.options as Record<string, string>).k0).toHaveLength(256);
    expect(out.optionsOmitted).toBe(8);
    expect(out).toMatchObject({ n: 5, list: [1, 2] });
  });
});
