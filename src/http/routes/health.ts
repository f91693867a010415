import { Hono } from "hono";
import type { Reachability } from "../../store/pg/database.ts";

/** A probe's answer is reused this long: /healthz is open, and must not turn a flood into database round trips. */
const PROBE_TTL_MS = 1000;

export interface DatabaseHealth {
  engine: "sqlite" | "postgres";
  probe(): Promise<Reachability>;
  /** On a node sharing PostgreSQL: whether its replica hears other nodes' changes, what waits to be shipped. */
  replication?(): Record<string, unknown>;
}

/**
 * `GET /healthz`: 200 while the database answers, 503 while it does not (PostgreSQL unreachable), with its
 * engine, reachability and round-trip time. At most one probe runs at a time, and its answer serves every
 * request of the next PROBE_TTL_MS.
 */
export function healthRoutes(database: DatabaseHealth): Hono {
  const app = new Hono();
  let last: { at: number; answer: Promise<Reachability> } | undefined;
  const probe = () => {
    const now = Date.now();
    if (!last || now - last.at >= PROBE_TTL_MS) last = { at: now, answer: database.probe() };
    return last.answer;
  };
  app.get("/healthz", async (c) => {
    const r = await probe();
    const body = {
      engine: database.engine,
      reachable: r.reachable,
      ...(r.latencyMs !== undefined ? { latencyMs: Math.round(r.latencyMs * 1000) / 1000 } : {}),
      ...(r.error ? { error: r.error } : {}),
      ...(database.replication ? { replication: database.replication() } : {}),
    };
    return r.reachable
      ? c.json({ status: "ok", database: body })
      : c.json({ status: "unavailable", database: body }, 503);
  });
  return app;
}
