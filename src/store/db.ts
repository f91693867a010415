import { chmodSync, closeSync, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import { MIGRATIONS } from "./migrations.ts";
import { cacheStatements } from "./statements.ts";

export type Db = Database.Database;

export class SchemaTooNewError extends Error {
  override name = "SchemaTooNewError";
}

/**
 * Opens (creating if needed) the SQLite file, sets WAL and foreign keys, caches compiled statements
 * (statements.ts) and applies pending migrations in one transaction each. A file whose schema is newer than
 * this code knows is refused, not guessed at.
 */
export function openDb(file: string): Db {
  if (file !== ":memory:") {
    mkdirSync(dirname(file), { recursive: true });
    restrictMode(file);
  }
  const db = new Database(file);
  cacheStatements(db);
  db.pragma("journal_mode = WAL");
  db.pragma("foreign_keys = ON");
  // The WAL makes NORMAL durable against process crashes; only power loss can drop the last commits.
  db.pragma("synchronous = NORMAL");
  db.pragma("busy_timeout = 5000");
  // A checkpoint runs inside the commit that crosses this many WAL pages, on the event loop, and fsyncs twice
  // (5-25 ms each on a busy disk): every request waits meanwhile. Boot requests commit once per event-loop
  // turn (HistoryWriter); at SQLite's default of 1000 pages that was a stall a second under load, at 10000
  // (a WAL of 40 MiB at most) one every ten seconds.
  db.pragma("wal_autocheckpoint = 10000");
  migrate(db);
  return db;
}

/**
 * The database holds machine metadata the API treats as secret: owner-only, like the token. SQLite gives its
 * `-wal` and `-shm` files the database file's mode, so creating the (empty, valid) database file 0600 first
 * covers all three; files an older Kindling created 0644 are tightened.
 */
function restrictMode(file: string): void {
  try {
    closeSync(openSync(file, "wx", 0o600));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  }
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    try {
      chmodSync(f, 0o600);
    } catch (err) {
      // Absent is fine; a file owned by someone else is left as its owner set it.
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "ENOENT" && code !== "EPERM") throw err;
    }
  }
}

export function schemaVersion(db: Db): number {
  return db.pragma("user_version", { simple: true }) as number;
}

export function migrate(db: Db, migrations: readonly string[] = MIGRATIONS): void {
  const current = schemaVersion(db);
  if (current > migrations.length) {
    db.close();
    throw new SchemaTooNewError(
      `database schema version ${current} is newer than this Kindling knows (${migrations.length}); ` +
        `upgrade Kindling or restore a backup of the data directory`,
    );
  }
  for (let v = current; v < migrations.length; v++) {
    db.transaction(() => {
      db.exec(migrations[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}

export const nowIso = (): string => new Date().toISOString();
