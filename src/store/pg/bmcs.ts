import type pg from "pg";
import { NotFoundError } from "../errors.ts";
import { changeNotice, STATE_CHANNEL } from "./changes.ts";
import type { PgDatabase } from "./database.ts";

/** A BMC row as store/bmcs.ts writes it. */
export type BmcValues = Record<string, unknown> & { mac: string };

const FOREIGN_KEY_VIOLATION = "23503";

/**
 * BMC writes on a PostgreSQL node: into PostgreSQL first (a BMC belongs to a machine there too, by foreign
 * key), each transaction telling every node which BMC changed (changes.ts); store/bmcs.ts then refreshes the
 * node's replica. Every node's keyring must open the passwords (docs/power.md: one key for all nodes).
 */
export class PgBmcWrites {
  constructor(private readonly pg: PgDatabase) {}

  put(v: BmcValues): Promise<void> {
    const cols = Object.keys(v);
    const sets = cols.filter((c) => c !== "mac" && c !== "created_at").map((c) => `${c} = excluded.${c}`);
    return this.write([v.mac], async (c) => {
      try {
        await c.query(
          `INSERT INTO bmcs (${cols.join(", ")}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(", ")})
           ON CONFLICT (mac) DO UPDATE SET ${sets.join(", ")}`,
          Object.values(v),
        );
      } catch (err) {
        if ((err as { code?: string }).code === FOREIGN_KEY_VIOLATION)
          throw new NotFoundError(`machine ${v.mac} not found`);
        throw err;
      }
    });
  }

  delete(mac: string): Promise<void> {
    return this.write([mac], async (c) => {
      const { rowCount } = await c.query("DELETE FROM bmcs WHERE mac = $1", [mac]);
      if (!rowCount) throw new NotFoundError(`machine ${mac} has no BMC`);
    });
  }

  setPower(mac: string, state: string, error: string | null, at: string): Promise<void> {
    return this.write([mac], (c) =>
      c.query("UPDATE bmcs SET power_state = $1, power_error = $2, power_checked_at = $3 WHERE mac = $4", [
        state,
        error,
        at,
        mac,
      ]),
    );
  }

  /** Re-encrypted passwords, all in one transaction. */
  setSecrets(rows: { mac: string; secret: string; keyId: string }[]): Promise<void> {
    return this.write(
      rows.map((r) => r.mac),
      async (c) => {
        for (const r of rows)
          await c.query("UPDATE bmcs SET secret = $1, key_id = $2 WHERE mac = $3", [r.secret, r.keyId, r.mac]);
      },
    );
  }

  private async write(macs: string[], fn: (c: pg.PoolClient) => Promise<unknown>): Promise<void> {
    if (macs.length === 0) return;
    await this.pg.transaction(async (c) => {
      await fn(c);
      for (const mac of macs) await c.query("SELECT pg_notify($1, $2)", [STATE_CHANNEL, changeNotice("b", mac)]);
    });
  }
}
