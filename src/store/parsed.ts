import type { z } from "zod";

/** Distinct body texts remembered per table; past this the oldest is forgotten. */
const MAX_BODIES = 1024;

/**
 * Validates JSON bodies (profiles, groups) once per distinct text instead of on every read: every boot
 * request reads its profile and all groups, and JSON.parse plus the schema cost more than the SQLite read.
 * Results are shared between callers, so they are deeply frozen: code that would change one throws.
 */
export function bodyParser<S extends z.ZodType>(schema: S, max = MAX_BODIES): (text: string) => z.output<S> {
  const seen = new Map<string, z.output<S>>();
  return (text) => {
    let body = seen.get(text);
    if (body === undefined) {
      body = deepFreeze(schema.parse(JSON.parse(text)));
      if (seen.size >= max) seen.delete(seen.keys().next().value!);
      seen.set(text, body);
    }
    return body;
  };
}

function deepFreeze<T>(v: T): T {
  if (v && typeof v === "object" && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}
