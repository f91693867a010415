import { rmSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { migrate, openDb, SchemaTooNewError, schemaVersion } from "../../src/store/db.ts";
import { MIGRATIONS } from "../../src/store/migrations.ts";
import { startTestKindling, tempDir } from "../helpers/kindling.ts";

const dirs: string[] = [];
const dir = () => {
  const d = tempDir();
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe("migrations", () => {
  it("an empty file gets the whole schema, WAL and foreign keys", () => {
    const db = openDb(join(dir(), "k.db"));
    expect(schemaVersion(db)).toBe(MIGRATIONS.length);
    expect(db.pragma("journal_mode", { simple: true })).toBe("wal");
    expect(db.pragma("foreign_keys", { simple: true })).toBe(1);
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type='table'").all() as { name: string }[]).map(
      (t) => t.name,
    );
    expect(tables).toEqual(expect.arrayContaining(["machines", "profiles", "groups", "events", "leases"]));
    db.close();
  });

  it("a file from an older schema (version 1) is upgraded through every later migration and keeps its rows", () => {
    const file = join(dir(), "k.db");
    const old = new Database(file);
    migrate(old, MIGRATIONS.slice(0, 1));
    old
      .prepare(
        "INSERT INTO machines (mac, state, created_at, updated_at) VALUES ('52:54:00:00:00:01', 'ready', 'c', 'u1')",
      )
      .run();
    old.prepare("INSERT INTO events (mac, kind, at) VALUES ('52:54:00:00:00:01', 'x', 'a')").run();
    old.close();
    const db = openDb(file);
    expect(schemaVersion(db)).toBe(MIGRATIONS.length);
    expect(db.prepare("SELECT mac, state, state_changed_at FROM machines").all()).toEqual([
      { mac: "52:54:00:00:00:01", state: "ready", state_changed_at: "u1" },
    ]);
    expect(db.prepare("SELECT count(*) n FROM events").get()).toEqual({ n: 1 });
    db.close();
  });

  it("a file from a newer Kindling is refused with a clear message and left untouched", () => {
    const file = join(dir(), "k.db");
    const db = new Database(file);
    db.pragma(`user_version = ${MIGRATIONS.length + 1}`);
    db.close();
    expect(() => openDb(file)).toThrow(SchemaTooNewError);
    expect(() => openDb(file)).toThrow(/newer than this Kindling knows/);
    const again = new Database(file);
    expect(again.pragma("user_version", { simple: true })).toBe(MIGRATIONS.length + 1);
    again.close();
  });
});

describe("restart", () => {
  it("keeps every machine, profile, group and event", async () => {
    const data = dir();
    const a = await startTestKindling({}, data);
    await a.api("/profiles/mine", { method: "PUT", json: { flatcar: { channel: "beta", version: "4593.1.0" } } });
    await a.api("/machines", {
      method: "POST",
      json: { mac: "52:54:00:00:00:09", profile: "mine", labels: { rack: "r1" } },
    });
    await a.api("/groups", { method: "POST", json: { name: "g", selector: { rack: "r1" }, profile: "mine" } });
    await fetch(`${a.url}/ipxe?mac=52:54:00:00:00:0a`);
    const before = {
      m: await (await a.api("/machines")).json(),
      p: await (await a.api("/profiles")).json(),
      g: await (await a.api("/groups")).json(),
      e: await (await a.api("/events?limit=1000")).json(),
    };
    await a.stop({ keepData: true });

    const b = await startTestKindling({}, data);
    const after = {
      m: await (await b.api("/machines")).json(),
      p: await (await b.api("/profiles")).json(),
      g: await (await b.api("/groups")).json(),
      e: await (await b.api("/events?limit=1000")).json(),
    };
    expect(after).toEqual(before);
    await b.stop({ keepData: true });
  });
});
