/**
 * Console sessions in the database, so they survive a restart and, on PostgreSQL, hold on every node. A row
 * is keyed by a hash of the session id (an HMAC under the API token, http/ui/session.ts); the id itself lives
 * only in the browser's cookie, so a copy of the database logs nobody in. SQLite here, PostgreSQL in
 * pg/sessions.ts; both behind one async interface.
 */
import type { Db } from "./db.ts";

export interface StoredSession {
  /** The synchronizer token every console form sends back. */
  csrf: string;
  /** The message the next page shows (JSON the console wrote), or null. */
  flash: string | null;
  /** Last request, unix ms. */
  seenAt: number;
}

export interface SessionStore {
  /**
   * Stores a new session. Beyond `max` sessions the least recently seen go (never the new one): the table
   * stays bounded however often someone holding the token logs in.
   */
  create(idHash: string, session: StoredSession, max: number): Promise<void>;
  get(idHash: string): Promise<StoredSession | undefined>;
  /** Records a request and the pending flash message; a session deleted meanwhile stays deleted. */
  update(idHash: string, seenAt: number, flash: string | null): Promise<void>;
  delete(idHash: string): Promise<void>;
  /** Deletes the sessions last seen before `before` (unix ms); returns how many. */
  sweep(before: number): Promise<number>;
  /** Sessions stored (tests, diagnostics). */
  count(): Promise<number>;
}

interface Row {
  csrf: string;
  flash: string | null;
  seen_at: number;
}

export class SqliteSessionStore implements SessionStore {
  constructor(private readonly db: Db) {}

  async create(idHash: string, s: StoredSession, max: number): Promise<void> {
    this.db.transaction(() => {
      this.db
        .prepare("INSERT INTO console_sessions (id_hash, csrf, flash, seen_at) VALUES (?, ?, ?, ?)")
        .run(idHash, s.csrf, s.flash, s.seenAt);
      this.db
        .prepare(
          `DELETE FROM console_sessions WHERE id_hash IN (
             SELECT id_hash FROM console_sessions WHERE id_hash <> ? ORDER BY seen_at DESC LIMIT -1 OFFSET ?)`,
        )
        .run(idHash, Math.max(0, max - 1));
    })();
  }

  async get(idHash: string): Promise<StoredSession | undefined> {
    const r = this.db.prepare("SELECT csrf, flash, seen_at FROM console_sessions WHERE id_hash = ?").get(idHash) as
      | Row
      | undefined;
    return r && { csrf: r.csrf, flash: r.flash, seenAt: r.seen_at };
  }

  async update(idHash: string, seenAt: number, flash: string | null): Promise<void> {
    this.db
      .prepare("UPDATE console_sessions SET seen_at = max(seen_at, ?), flash = ? WHERE id_hash = ?")
      .run(seenAt, flash, idHash);
  }

  async delete(idHash: string): Promise<void> {
    this.db.prepare("DELETE FROM console_sessions WHERE id_hash = ?").run(idHash);
  }

  async sweep(before: number): Promise<number> {
    return this.db.prepare("DELETE FROM console_sessions WHERE seen_at < ?").run(before).changes;
  }

  async count(): Promise<number> {
    return (this.db.prepare("SELECT count(*) AS n FROM console_sessions").get() as { n: number }).n;
  }
}
