/**
 * Console sessions in PostgreSQL: a login on one node is a login on every node sharing the database, and a
 * logout on any node ends it everywhere. Same rows and rules as the SQLite store (../sessions.ts). When the
 * database is unreachable every call throws DatabaseUnavailableError (the console answers 503).
 */
import type { SessionStore, StoredSession } from "../sessions.ts";
import type { PgDatabase } from "./database.ts";

interface Row {
  csrf: string;
  flash: string | null;
  seen_at: string;
}

export class PgSessionStore implements SessionStore {
  constructor(private readonly pg: PgDatabase) {}

  async create(idHash: string, s: StoredSession, max: number): Promise<void> {
    await this.pg.transaction(async (c) => {
      await c.query("INSERT INTO console_sessions (id_hash, csrf, flash, seen_at) VALUES ($1, $2, $3, $4)", [
        idHash,
        s.csrf,
        s.flash,
        s.seenAt,
      ]);
      // Two nodes trimming at once may both delete: the table ends below the cap, never above it.
      await c.query(
        `DELETE FROM console_sessions WHERE id_hash IN (
           SELECT id_hash FROM console_sessions WHERE id_hash <> $1 ORDER BY seen_at DESC OFFSET $2)`,
        [idHash, Math.max(0, max - 1)],
      );
    });
  }

  async get(idHash: string): Promise<StoredSession | undefined> {
    const { rows } = await this.pg.query<Row>("SELECT csrf, flash, seen_at FROM console_sessions WHERE id_hash = $1", [
      idHash,
    ]);
    const r = rows[0];
    // BIGINT arrives as a string; unix ms fit a double exactly.
    return r && { csrf: r.csrf, flash: r.flash, seenAt: Number(r.seen_at) };
  }

  async update(idHash: string, seenAt: number, flash: string | null): Promise<void> {
    await this.pg.query("UPDATE console_sessions SET seen_at = GREATEST(seen_at, $1), flash = $2 WHERE id_hash = $3", [
      seenAt,
      flash,
      idHash,
    ]);
  }

  async delete(idHash: string): Promise<void> {
    await this.pg.query("DELETE FROM console_sessions WHERE id_hash = $1", [idHash]);
  }

  async sweep(before: number): Promise<number> {
    const r = await this.pg.query("DELETE FROM console_sessions WHERE seen_at < $1", [before]);
    return r.rowCount ?? 0;
  }

  async count(): Promise<number> {
    const { rows } = await this.pg.query<{ n: string }>("SELECT count(*) AS n FROM console_sessions");
    return Number(rows[0]!.n);
  }
}
