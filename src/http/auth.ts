import { createHash, timingSafeEqual } from "node:crypto";
import type { MiddlewareHandler } from "hono";

/** Bearer-token guard. Both sides are hashed first, so the comparison is constant-time whatever their lengths. */
export function bearerAuth(token: string): MiddlewareHandler {
  const want = createHash("sha256").update(token).digest();
  return async (c, next) => {
    const header = c.req.header("authorization") ?? "";
    const match = /^Bearer\s+(.+)$/i.exec(header);
    const got = createHash("sha256")
      .update(match?.[1]?.trim() ?? "")
      .digest();
    if (!match || !timingSafeEqual(want, got)) {
      c.header("WWW-Authenticate", 'Bearer realm="kindling"');
      return c.json({ error: "missing or invalid bearer token" }, 401);
    }
    await next();
  };
}
