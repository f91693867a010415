import { describe, expect, it } from "vitest";
import { openDb } from "../../src/store/db.ts";
import { Store } from "../../src/store/index.ts";
import type { PageRequest } from "../../src/store/machines.ts";

const macOf = (i: number) =>
  `52:54:00:00:${((i >> 8) & 255).toString(16).padStart(2, "0")}:${(i & 255).toString(16).padStart(2, "0")}`;

function walk(store: Store, req: Omit<PageRequest, "after" | "before">) {
  const seen: string[] = [];
  let page = store.machines.page({}, req);
  const pages = [page];
  seen.push(...page.items.map((m) => m.mac));
  while (page.next) {
    page = store.machines.page({}, { ...req, after: page.next });
    pages.push(page);
    seen.push(...page.items.map((m) => m.mac));
  }
  return { seen, pages };
}

describe("machine pages", () => {
  it("walks every machine once, in MAC order, forward and back", () => {
    const store = new Store(openDb(":memory:"));
    for (const i of [5, 3, 9, 1, 7, 2, 8, 4, 6, 0])
      store.machines.create({ mac: macOf(i), labels: {}, metadata: {} }, "discovered");
    const { seen, pages } = walk(store, { limit: 3 });
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map(macOf));
    expect(pages.map((p) => p.items.length)).toEqual([3, 3, 3, 1]);
    expect(pages[0]!.prev).toBeUndefined();
    expect(pages.at(-1)!.next).toBeUndefined();
    // Back from the last page: the page before it, in the same order.
    const back = store.machines.page({}, { limit: 3, before: pages.at(-1)!.prev });
    expect(back.items.map((m) => m.mac)).toEqual([6, 7, 8].map(macOf));
    expect(back.next).toBeDefined();
    const first = store.machines.page({}, { limit: 3, before: { mac: macOf(3) } });
    expect(first.items.map((m) => m.mac)).toEqual([0, 1, 2].map(macOf));
    expect(first.prev).toBeUndefined();
  });

  it("newest first by first sighting, ties broken by MAC, with filters", () => {
    const store = new Store(openDb(":memory:"));
    for (let i = 0; i < 7; i++) store.machines.recordSighting({ mac: macOf(i) });
    // Two share a time: the order must still be total.
    store.db
      .prepare("UPDATE machines SET first_seen = '2030-01-01T00:00:00.000Z' WHERE mac IN (?, ?)")
      .run(macOf(1), macOf(4));
    store.machines.update(macOf(6), { profile: null, hostname: "kept" });
    const all = walk(store, { limit: 2, order: "newest" }).seen;
    expect(all).toHaveLength(7);
    expect(new Set(all).size).toBe(7);
    expect(all.slice(0, 2)).toEqual([macOf(4), macOf(1)]);
    const filtered = store.machines.page({ search: "kept" }, { limit: 5, order: "newest" });
    expect(filtered.items.map((m) => m.mac)).toEqual([macOf(6)]);
  });
});

describe("discovered-machine cap", () => {
  it("forgets the least recently seen untouched machines and their events, never touched or registered ones", async () => {
    const store = new Store(openDb(":memory:"), { maxDiscovered: 5 });
    const registered = store.machines.create({ mac: macOf(100), labels: {}, metadata: {} }, "discovered");
    store.machines.recordSighting({ mac: macOf(0) });
    store.machines.update(macOf(0), { hostname: "touched" }); // an operator edited it
    for (let i = 1; i <= 5; i++) {
      store.machines.recordSighting({ mac: macOf(i) });
      store.events.append({ mac: macOf(i), kind: "machine.discovered" });
    }
    // Seen again: now the most recent, not the oldest.
    store.db.prepare("UPDATE machines SET last_seen = '2000-01-01T00:00:00.000Z' WHERE mac != ?").run(macOf(1));
    const r = store.machines.recordSighting({ mac: macOf(6) });
    expect(r).toMatchObject({ created: true, evicted: 1 });
    const macs = store.machines.list().map((m) => m.mac);
    expect(macs).toContain(registered.mac);
    expect(macs).toContain(macOf(0));
    expect(macs).toContain(macOf(1));
    expect(macs).toContain(macOf(6));
    expect(macs).not.toContain(macOf(2));
    expect(await store.events.list({ mac: macOf(2) })).toEqual([]);
    expect(await store.events.list({ mac: macOf(3) })).toHaveLength(1);
    // Many more: the untouched set never exceeds the cap.
    for (let i = 7; i < 200; i++) store.machines.recordSighting({ mac: macOf(i) });
    expect(store.machines.list({ state: "discovered" }).length).toBeLessThanOrEqual(5 + 2);
    expect(store.machines.get(macOf(0))).toBeDefined();
    expect(store.machines.get(macOf(199))).toBeDefined();
  });
});
