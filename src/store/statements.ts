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
  const compile = db.prepare.bind(db);
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
