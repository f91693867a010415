import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Context, MiddlewareHandler } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";

export const COOKIE = "kindling_session";
const IDLE_MS = 12 * 3600_000;

export interface Flash {
  kind: "ok" | "error";
  text: string;
}

export interface Session {
  /** Sent in every form as `_csrf` and checked on every POST (synchronizer token). */
  csrf: string;
  /** Shown once on the next page, after a POST-redirect-GET. */
  flash?: Flash | undefined;
  seenAt: number;
}

declare module "hono" {
  interface ContextVariableMap {
    session: Session;
  }
}

const sha = (s: string) => createHash("sha256").update(s).digest();
const same = (a: string, b: string) => timingSafeEqual(sha(a), sha(b));

/**
 * Console sessions, kept in memory: the cookie holds only a random id, so a restart (or logout) ends every
 * session and there is no key on disk to protect. Idle sessions expire after 12 hours.
 */
export class Sessions {
  private readonly byId = new Map<string, Session>();

  constructor(private readonly apiToken: string) {}

  /** Checks the API token in constant time; on success starts a session and sets its cookie. */
  login(c: Context, token: string): boolean {
    if (!same(token.trim(), this.apiToken)) return false;
    this.sweep();
    const id = randomBytes(32).toString("base64url");
    this.byId.set(id, { csrf: randomBytes(32).toString("base64url"), seenAt: Date.now() });
    setCookie(c, COOKIE, id, {
      path: "/ui",
      httpOnly: true,
      sameSite: "Strict",
      secure: new URL(c.req.url).protocol === "https:",
    });
    return true;
  }

  logout(c: Context): void {
    const id = getCookie(c, COOKIE);
    if (id) this.byId.delete(id);
    deleteCookie(c, COOKIE, { path: "/ui" });
  }

  /**
   * Guards the console: no session → the login page (a 401 for htmx fragment requests, which cannot follow
   * a login); a POST without the session's CSRF token → 403.
   */
  guard(): MiddlewareHandler {
    return async (c, next) => {
      const id = getCookie(c, COOKIE);
      const session = id ? this.byId.get(id) : undefined;
      if (!session || Date.now() - session.seenAt > IDLE_MS) {
        if (id) this.byId.delete(id);
        if (c.req.header("hx-request")) return c.text("session expired: log in again", 401);
        return c.redirect("/ui/login", 303);
      }
      session.seenAt = Date.now();
      if (c.req.method === "POST") {
        const form = await formOf(c);
        if (!form) return c.text("the form data could not be read", 400);
        const sent = form._csrf;
        if (typeof sent !== "string" || !same(sent, session.csrf)) return c.text("missing or wrong CSRF token", 403);
      }
      c.set("session", session);
      await next();
    };
  }

  private sweep(): void {
    const now = Date.now();
    for (const [id, s] of this.byId) if (now - s.seenAt > IDLE_MS) this.byId.delete(id);
  }
}

/**
 * The posted form, or undefined when the body is not readable form data (broken multipart, bad encoding):
 * a client error, never a crash. hono caches the parsed body, so handlers read it again for free.
 */
export async function formOf(c: Context): Promise<Record<string, string | File | (string | File)[]> | undefined> {
  try {
    return await c.req.parseBody({ all: true });
  } catch {
    return undefined;
  }
}

/** Sets the message the next page shows and redirects there (POST-redirect-GET). */
export function flashRedirect(c: Context, to: string, flash: Flash): Response {
  c.get("session").flash = flash;
  return c.redirect(to, 303);
}

/** The pending message, shown once. */
export function takeFlash(c: Context): Flash | undefined {
  const s = c.get("session");
  const f = s.flash;
  s.flash = undefined;
  return f;
}
