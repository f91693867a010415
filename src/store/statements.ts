import type Database from "better-sqlite3";

/** Distinct SQL texts kept compiled: the store has a few dozen (list filters combine into a few more). */
export const MAX_CACHED_STATEMENTS = 256;

/**
 * Makes `db.prepare(sql)` hand back one compiled statement per SQL text, so store code keeps its SQL where it
 * runs and still does not compile it on every call (compiling costs as much as the one-row read it serves:
 * about a tenth of an `/ipxe` request's CPU before this). Sharing a statement is safe because nothing in
 * Kindling switches one into another mode (`pluck`, `raw`, `expand`, `safeIntegers`) or leaves one
 * mid-`iterate`; code that needs either must prepare its own statement outside this cache. The least
 * recently used statement is dropped beyond `max`, which bounds SQL built from values, were any.
 */
export function cacheStatements(db: Database.Database, max = MAX_CACHED_STATEMENTS): void {
  const generation = { n: 0 };
  generations.set(db, generation);
  const prepare = db.prepare.bind(db);
  const compile = (sql: string) => countWrites(prepare(sql), sql, generation);
  const exec = db.exec.bind(db);
  db.exec = (sql: string) => {
    generation.n++;
    return exec(sql);
  };
  const cache = new Map<string, Database.Statement>();
  db.prepare = ((sql: string) => {
    let statement = cache.get(sql);
    if (statement) {
      // Map order is the eviction order: a hit moves to the back.
      cache.delete(sql);
    } else {
      statement = compile(sql);
      if (cache.size >= max) cache.delete(cache.keys().next().value!);
    }
    cache.set(sql, statement);
    return statement;
  }) as typeof db.prepare;
}

const generations = new WeakMap<Database.Database, { n: number }>();

/**
 * Writes that cannot change what a boot request is answered: the event log, the sighting's `last_seen`
 * (HistoryWriter's touch), console sessions, and a PostgreSQL node's shipping bookkeeping (`pending_sightings`,
 * `replication`). Every other write counts, including ones this file has never seen.
 */
const UNCOUNTED =
  /^\s*(?:INSERT\s+INTO\s+events\b|DELETE\s+FROM\s+events\b|(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+(?:console_sessions|pending_sightings|replication)\b|UPDATE\s+machines\s+SET\s+last_seen\s*=\s*\?\s+WHERE\s+mac\s*=\s*\?\s*$)/i;

/**
 * A number that changes whenever anything that can change a boot answer is written through this connection
 * (machines, groups, profiles, leases, migrations; `db.exec` always counts): a cache of answers compares it
 * to the value it rendered under. Kindling is the database's only writer of those tables (the data-dir lock;
 * `kindling assets` writes events only). Counted when a statement runs, so a rolled-back write counts too,
 * which costs a cache miss and nothing else.
 */
export function writeGeneration(db: Database.Database): number {
  return generations.get(db)?.n ?? 0;
}

function countWrites(statement: Database.Statement, sql: string, generation: { n: number }): Database.Statement {
  if (statement.readonly || UNCOUNTED.test(sql)) return statement;
  // All four: a write with RETURNING runs through get, all or iterate.
  for (const method of ["run", "get", "all", "iterate"] as const) {
    const original = statement[method] as (...args: unknown[]) => unknown;
    (statement as unknown as Record<string, unknown>)[method] = function (
      this: Database.Statement,
      ...args: unknown[]
    ) {
      generation.n++;
      return original.apply(this, args);
    };
  }
  return statement;
}
