/**
 * Values every node sharing one PostgreSQL must agree on: the API token (a request with it works on any node)
 * and the URL signing key (a URL one node signed verifies on every node). The first node to start stores
 * them; the rest read what it stored.
 */
import type { PgDatabase } from "./database.ts";

export type SecretName = "api-token" | "signing-key";

/**
 * Where a node's API token or signing key came from, for the start-up log (never the value): `config` (flag,
 * env or config file), the data dir's `file`, `generated` into that file; on PostgreSQL `postgres` (another
 * node stored it), `file-to-postgres` (this node's file, now shared) or `generated-in-postgres`.
 */
export type SecretSource = "config" | "file" | "generated" | "postgres" | "file-to-postgres" | "generated-in-postgres";

/** What a node resolves its shared secrets through; PostgreSQL's implementation below. */
export interface SharedSecrets {
  /**
   * The stored value of `name`, or, when there is none, `seed()` stored as it. Nodes racing here all end
   * with the one value that was stored first; `created` tells the one whose seed it was. `seed` runs only
   * when nothing is stored yet.
   */
  getOrCreate(name: SecretName, seed: () => string): Promise<{ value: string; created: boolean }>;
}

export class PgSecrets implements SharedSecrets {
  constructor(private readonly pg: PgDatabase) {}

  async getOrCreate(name: SecretName, seed: () => string): Promise<{ value: string; created: boolean }> {
    const stored = await this.get(name);
    if (stored !== undefined) return { value: stored, created: false };
    const value = seed();
    // DO NOTHING, not DO UPDATE: a node that lost the race must not replace the value the winner handed out.
    const ins = await this.pg.query(
      "INSERT INTO secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
      [name, value, new Date().toISOString()],
    );
    if (ins.rowCount === 1) return { value, created: true };
    const winner = await this.get(name);
    if (winner === undefined) throw new Error(`secrets: ${name} was neither stored nor readable`);
    return { value: winner, created: false };
  }

  private async get(name: SecretName): Promise<string | undefined> {
    const { rows } = await this.pg.query<{ value: string }>("SELECT value FROM secrets WHERE name = $1", [name]);
    return rows[0]?.value;
  }
}
