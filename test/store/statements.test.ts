import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { openDb } from "../../src/store/db.ts";
import { Store } from "../../src/store/index.ts";
import { cacheStatements, writeGeneration } from "../../src/store/statements.ts";

describe("prepared statement cache", () => {
  it("openDb's prepare compiles each SQL text once and the statement keeps working", () => {
    const db = openDb(":memory:");
    const sql = "SELECT count(*) n FROM events WHERE kind = ?";
    const a = db.prepare(sql);
    expect(db.prepare(sql)).toBe(a);
    db.prepare("INSERT INTO events (kind, detail, at) VALUES (?, '{}', ?)").run("k", "2026-01-01T00:00:00Z");
    expect(db.prepare(sql).get("k")).toEqual({ n: 1 });
    expect(db.prepare("SELECT 1 x")).not.toBe(a);
    db.close();
  });

  it("keeps at most `max` statements, dropping the least recently used", () => {
    const db = new Database(":memory:");
    cacheStatements(db, 2);
    const one = db.prepare("SELECT 1");
    const two = db.prepare("SELECT 2");
    expect(db.prepare("SELECT 1")).toBe(one); // now the most recently used
    db.prepare("SELECT 3"); // evicts SELECT 2
    expect(db.prepare("SELECT 1")).toBe(one);
    expect(db.prepare("SELECT 2")).not.toBe(two);
    db.close();
  });

  it("a statement that does not compile is an error each time, not a cached entry", () => {
    const db = new Database(":memory:");
    cacheStatements(db);
    expect(() => db.prepare("SELEC 1")).toThrow(/syntax error/);
    expect(() => db.prepare("SELEC 1")).toThrow(/syntax error/);
    db.close();
  });
});

describe("write generation", () => {
  it("moves on every write that can change a boot answer, and not on reads, events or last_seen", async () => {
    const store = new Store(openDb(":memory:"));
    const { db } = store;
    const moved = (fn: () => unknown) => {
      const before = writeGeneration(db);
      fn();
      return writeGeneration(db) - before;
    };
    const mac = "52:54:00:9e:00:01";
    expect(moved(() => store.machines.create({ mac, labels: {}, metadata: {} }, "discovered"))).toBeGreaterThan(0);
    expect(moved(() => store.machines.update(mac, { hostname: "n1" }))).toBeGreaterThan(0);
    expect(moved(() => store.profiles.put({ name: "p", localDisk: true } as never))).toBeGreaterThan(0);
    expect(
      moved(() => store.groups.put({ name: "g", selector: {}, profile: "p", metadata: {} } as never)),
    ).toBeGreaterThan(0);
    expect(moved(() => db.prepare("UPDATE machines SET labels = '{}' WHERE mac = ?").run(mac))).toBeGreaterThan(0);
    expect(moved(() => db.prepare("DELETE FROM groups WHERE name = ? RETURNING name").get("g"))).toBeGreaterThan(0);
    expect(moved(() => db.exec("UPDATE profiles SET builtin = builtin"))).toBeGreaterThan(0);
    // A machine's own sighting moved on by a boot request, the event log, and reads.
    expect(
      moved(() => {
        store.machines.get(mac);
        store.groups.list();
        store.history.reading(() => store.profiles.get("p"));
        store.history.touched(mac);
        store.history.append({ mac, kind: "ipxe.request" });
        store.history.flush();
        void store.events.prune(1);
      }),
    ).toBe(0);
    expect(store.machines.get(mac)!.lastSeen).not.toBeNull();
    // On a PostgreSQL node a sighting also marks its machine for shipping, and the shipper moves its cursor:
    // neither changes an answer, so neither may empty the /ipxe answer cache on every request.
    store.history.shipSightings();
    expect(
      moved(() => {
        store.history.touched(mac);
        store.history.flush();
        db.prepare("DELETE FROM pending_sightings WHERE seq <= ?").run(1_000_000);
        db.prepare(
          "INSERT INTO replication (name, value) VALUES ('events', '1') ON CONFLICT(name) DO UPDATE SET value = excluded.value",
        ).run();
      }),
    ).toBe(0);
    expect(db.prepare("SELECT count(*) n FROM pending_sightings").get()).toEqual({ n: 0 });
    store.close();
  });
});
