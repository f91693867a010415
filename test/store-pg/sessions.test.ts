/**
 * The console session store's contract on both engines: a SQLite file and a real PostgreSQL 15.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDb } from "../../src/store/db.ts";
import { PgDatabase } from "../../src/store/pg/database.ts";
import { migratePg } from "../../src/store/pg/migrate.ts";
import { PgSessionStore } from "../../src/store/pg/sessions.ts";
import { type SessionStore, SqliteSessionStore } from "../../src/store/sessions.ts";
import { tempDir } from "../helpers/kindling.ts";
import { startPostgres, type TestPostgres } from "../helpers/postgres.ts";

let pgs: TestPostgres;
const closers: (() => unknown)[] = [];
beforeAll(() => {
  pgs = startPostgres();
});
afterAll(async () => {
  for (const c of closers.splice(0)) await c();
  pgs?.stop();
});

const engines: [string, () => Promise<SessionStore>][] = [
  [
    "sqlite",
    async () => {
      const db = openDb(join(tempDir(), "kindling.db"));
      closers.push(() => db.close());
      return new SqliteSessionStore(db);
    },
  ],
  [
    "postgres",
    async () => {
      const db = new PgDatabase({ url: pgs.url(await pgs.createDatabase("sessions")) });
      closers.push(() => db.close());
      await migratePg(db);
      return new PgSessionStore(db);
    },
  ],
];

describe.each(engines)("session store on %s", (_engine, open) => {
  let s: SessionStore;
  beforeAll(async () => {
    s = await open();
  });

  it("stores, reads, updates and deletes a session", async () => {
    await s.create("h1", { csrf: "c1", flash: null, seenAt: 1000 }, 10);
    expect(await s.get("h1")).toEqual({ csrf: "c1", flash: null, seenAt: 1000 });
    await s.update("h1", 2000, '{"kind":"ok","text":"done"}');
    expect(await s.get("h1")).toEqual({ csrf: "c1", flash: '{"kind":"ok","text":"done"}', seenAt: 2000 });
    // Another node's slower request with an older time does not move the session back.
    await s.update("h1", 1500, null);
    expect(await s.get("h1")).toEqual({ csrf: "c1", flash: null, seenAt: 2000 });
    await s.delete("h1");
    expect(await s.get("h1")).toBeUndefined();
    // An update of a deleted session (logged out elsewhere) does not bring it back.
    await s.update("h1", 3000, null);
    expect(await s.get("h1")).toBeUndefined();
    expect(await s.count()).toBe(0);
  });

  it("keeps at most `max`: the least recently seen go, never the new one, even on equal times", async () => {
    for (let i = 0; i < 5; i++) await s.create(`cap${i}`, { csrf: "c", flash: null, seenAt: 5000 + i }, 3);
    expect(await s.count()).toBe(3);
    expect(await s.get("cap0")).toBeUndefined();
    expect(await s.get("cap1")).toBeUndefined();
    expect(await s.get("cap4")).toBeDefined();
    // A newcomer whose time ties with (or is older than) every stored one still stays.
    await s.create("late", { csrf: "c", flash: null, seenAt: 1 }, 3);
    expect(await s.count()).toBe(3);
    expect(await s.get("late")).toBeDefined();
  });

  it("sweeps the sessions last seen before a time", async () => {
    const before = await s.count();
    await s.create("old", { csrf: "c", flash: null, seenAt: 10 }, 100);
    await s.create("new", { csrf: "c", flash: null, seenAt: 9_000_000 }, 100);
    const removed = await s.sweep(6000);
    expect(removed).toBeGreaterThanOrEqual(1);
    expect(await s.get("old")).toBeUndefined();
    expect(await s.get("new")).toBeDefined();
    expect(await s.count()).toBe(before + 2 - removed);
  });
});
