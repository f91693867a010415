import type { MiddlewareHandler } from "hono";
import { requestId } from "hono/request-id";
import { routePath } from "hono/route";
import type { Logger } from "../log.ts";
import type { Metrics } from "./metrics.ts";

declare module "hono" {
  interface ContextVariableMap {
    /** The app logger bound to this request's id. */
    log: Logger;
  }
}

/**
 * Gives every request an id (the client's `X-Request-Id` when it is sane, else a new UUID, echoed in the
 * answer), a child logger carrying it, one log line when it ends, and a count under its route pattern.
 */
export function observeHttp(metrics: Metrics, log: Logger): MiddlewareHandler[] {
  const ids = requestId();
  const observe: MiddlewareHandler = async (c, next) => {
    const started = performance.now();
    const reqLog = log.child({ reqId: c.get("requestId") });
    c.set("log", reqLog);
    await next();
    const seconds = (performance.now() - started) / 1000;
    // The pattern of the handler that answered ("/api/v1/machines/:mac", "/assets/*"); an unmatched path
    // shows as the catch-all it fell through to. Either way the label has few values.
    const route = routePath(c) || "unmatched";
    const status = c.res.status;
    metrics.observeHttp(c.req.method, route, status, seconds);
    const line = { method: c.req.method, path: c.req.path, route, status, ms: Math.round(seconds * 1000) };
    if (status >= 500) reqLog.warn(line, "http request failed");
    else reqLog.debug(line, "http request");
  };
  return [ids, observe];
}
