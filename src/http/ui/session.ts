import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { Context, MiddlewareHandler } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { z } from "zod";
import { DatabaseBusyError, DatabaseUnavailableError } from "../../store/pg/database.ts";
import type { SessionStore } from "../../store/sessions.ts";

export const COOKIE = "kindling_session";
/** A session not used for this long is over. */
export const IDLE_MS = 12 * 3600_000;
/** Sessions kept at most; past it a login ends the least recently used one. */
export const MAX_SESSIONS = 1000;
/** A request writes its session's last-seen time at most this often: a page polling every few seconds does not write each time. */
const TOUCH_MS = 60_000;

const FlashSchema = z.object({ kind: z.enum(["ok", "error"]), text: z.string() });
export type Flash = z.infer<typeof FlashSchema>;

export interface Session {
  /** Sent in every form as `_csrf` and checked on every POST (synchronizer token). */
  csrf: string;
  /** Shown once on the next page, after a POST-redirect-GET. */
  flash?: Flash | undefined;
}

declare module "hono" {
  interface ContextVariableMap {
    session: Session;
  }
}

const sha = (s: string) => createHash("sha256").update(s).digest();
const same = (a: string, b: string) => timingSafeEqual(sha(a), sha(b));

const unavailable = (err: unknown) => err instanceof DatabaseUnavailableError || err instanceof DatabaseBusyError;

function readFlash(stored: string | null): Flash | undefined {
  if (stored === null) return undefined;
  try {
    const f = FlashSchema.safeParse(JSON.parse(stored));
    return f.success ? f.data : undefined;
  } catch {
    return undefined;
  }
}

/** The console cannot check or keep a session while its database does not answer: say so, do not loop to the login. */
export function databaseUnavailable(c: Context): Response {
  const text =
    "The console is unavailable: Kindling's database does not answer. Boot and DHCP keep serving known " +
    "machines; try again once the database is back (/healthz shows its state).";
  if (c.req.header("hx-request")) return c.text(text, 503, { "Retry-After": "10" });
  return c.html(`<!doctype html><title>Kindling: database unavailable</title><p>${text}</p>`, 503, {
    "Retry-After": "10",
  });
}

/**
 * Console sessions, kept in the database (store/sessions.ts): they survive a restart and, on PostgreSQL, hold
 * on every node. The cookie holds a random id; the database only its HMAC under the API token, so a copy of
 * the database logs nobody in. Idle sessions expire after 12 hours; a failed login writes nothing.
 */
export class Sessions {
  /**
   * What the database keys a session by: HMAC-SHA256 of the cookie's id under the API token. The id never
   * reaches the database, and a session lives only as long as the token it was opened with: a new token
   * (rotated in PostgreSQL or the config) ends every older session, and a node with its own configured
   * token does not take sessions opened with the shared one.
   */
  private readonly idHash = (id: string) => createHmac("sha256", this.apiToken).update(id).digest("hex");
  /** Sessions logged out during the request that holds them: not written back afterwards. */
  private readonly ended = new WeakSet<Session>();

  constructor(
    private readonly apiToken: string,
    private readonly store: SessionStore,
  ) {}

  /**
   * Checks the API token in constant time; on success stores a session and sets its cookie. "refused" wrote
   * nothing; "unavailable": the token was right but the database could not store the session.
   */
  async login(c: Context, token: string): Promise<"ok" | "refused" | "unavailable"> {
    if (!same(token.trim(), this.apiToken)) return "refused";
    const now = Date.now();
    const id = randomBytes(32).toString("base64url");
    try {
      await this.store.sweep(now - IDLE_MS);
      await this.store.create(
        this.idHash(id),
        { csrf: randomBytes(32).toString("base64url"), flash: null, seenAt: now },
        MAX_SESSIONS,
      );
    } catch (err) {
      if (unavailable(err)) return "unavailable";
      throw err;
    }
    setCookie(c, COOKIE, id, {
      path: "/ui",
      httpOnly: true,
      sameSite: "Strict",
      secure: new URL(c.req.url).protocol === "https:",
    });
    return "ok";
  }

  /** Ends the request's session on every node (it runs behind guard()). */
  async logout(c: Context): Promise<void> {
    const id = getCookie(c, COOKIE);
    if (id) await this.store.delete(this.idHash(id));
    this.ended.add(c.get("session"));
    deleteCookie(c, COOKIE, { path: "/ui" });
  }

  /**
   * Guards the console: no session → the login page (a 401 for htmx fragment requests, which cannot follow
   * a login); a POST without the session's CSRF token → 403; the database unreachable → 503. After the
   * handler, the flash message it set or took and the last-seen time are written back.
   */
  guard(): MiddlewareHandler {
    return async (c, next) => {
      const id = getCookie(c, COOKIE);
      const key = id === undefined ? undefined : this.idHash(id);
      const now = Date.now();
      let stored: Awaited<ReturnType<SessionStore["get"]>>;
      try {
        stored = key === undefined ? undefined : await this.store.get(key);
        if (stored && now - stored.seenAt > IDLE_MS) {
          await this.store.delete(key!);
          stored = undefined;
        }
      } catch (err) {
        if (unavailable(err)) return databaseUnavailable(c);
        throw err;
      }
      if (!stored) {
        if (c.req.header("hx-request")) return c.text("session expired: log in again", 401);
        return c.redirect("/ui/login", 303);
      }
      const session: Session = { csrf: stored.csrf, flash: readFlash(stored.flash) };
      if (c.req.method === "POST") {
        const form = await formOf(c);
        if (!form) return c.text("the form data could not be read", 400);
        const sent = form._csrf;
        if (typeof sent !== "string" || !same(sent, session.csrf)) return c.text("missing or wrong CSRF token", 403);
      }
      c.set("session", session);
      await next();
      if (this.ended.has(session)) return;
      const flash = session.flash === undefined ? null : JSON.stringify(session.flash);
      if (flash === stored.flash && now - stored.seenAt < TOUCH_MS) return;
      try {
        await this.store.update(key!, now, flash);
      } catch (err) {
        // The answer is made; what is lost is a flash message or a minute of idle time.
        if (!unavailable(err)) throw err;
      }
    };
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
