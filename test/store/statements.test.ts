import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { openDb } from "../../src/store/db.ts";
import { cacheStatements } from "../../src/store/statements.ts";

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
