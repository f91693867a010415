/**
 * Console sessions in the node's SQLite file: the real server on loopback, real HTTP logins, the rows read
 * back from kindling.db.
 */
import { createHmac } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IDLE_MS, MAX_SESSIONS } from "../../src/http/ui/session.ts";
import { type Running, startTestKindling, TEST_TOKEN, tempDir } from "../helpers/kindling.ts";

const form = (fields: Record<string, string>, cookie?: string) => ({
  method: "POST",
  redirect: "manual" as const,
  headers: { "content-type": "application/x-www-form-urlencoded", ...(cookie ? { cookie } : {}) },
  body: new URLSearchParams(fields).toString(),
});

async function login(k: Running): Promise<string> {
  const res = await fetch(`${k.url}/ui/login`, form({ token: TEST_TOKEN }));
  expect(res.status).toBe(303);
  return res.headers.get("set-cookie")!.split(";")[0]!;
}

const page = (k: Running, cookie: string, path = "/ui/machines") =>
  fetch(`${k.url}${path}`, { headers: { cookie }, redirect: "manual" });
const loggedIn = async (k: Running, cookie: string) => (await page(k, cookie)).status === 200;
const idHash = (cookie: string) => createHmac("sha256", TEST_TOKEN).update(cookie.split("=")[1]!).digest("hex");
const rows = (k: Running) =>
  k.store.db.prepare("SELECT id_hash, csrf, flash, seen_at FROM console_sessions").all() as {
    id_hash: string;
    csrf: string;
    flash: string | null;
    seen_at: number;
  }[];

describe("console sessions on SQLite", () => {
  let k: Running;
  beforeAll(async () => {
    k = await startTestKindling({ database: undefined });
  });
  afterAll(async () => {
    await k?.stop();
  });

  it("keeps only an HMAC of the session id (under the API token) in the database", async () => {
    const cookie = await login(k);
    const id = cookie.split("=")[1]!;
    const mine = rows(k).filter((r) => r.id_hash === idHash(cookie));
    expect(mine).toHaveLength(1);
    expect(JSON.stringify(rows(k))).not.toContain(id);
  });

  it("writes no row for a failed login, however many", async () => {
    const before = rows(k).length;
    for (let i = 0; i < 50; i++) {
      const r = await fetch(`${k.url}/ui/login`, form({ token: i % 2 ? `wrong-token-${i}-0123456789` : "" }));
      expect(r.status).toBe(401);
      expect(r.headers.get("set-cookie")).toBeNull();
    }
    expect(rows(k).length).toBe(before);
  });

  it("ends a session idle for 12 hours and deletes its row; a login sweeps every expired row", async () => {
    const idle = await login(k);
    const forgotten = await login(k);
    const stale = Date.now() - IDLE_MS - 60_000;
    k.store.db
      .prepare("UPDATE console_sessions SET seen_at = ? WHERE id_hash IN (?, ?)")
      .run(stale, idHash(idle), idHash(forgotten));
    const r = await page(k, idle);
    expect(r.status).toBe(303);
    expect(r.headers.get("location")).toBe("/ui/login");
    expect(rows(k).some((x) => x.id_hash === idHash(idle))).toBe(false);
    // Nobody came back with the other one: the next login removes it.
    expect(rows(k).some((x) => x.id_hash === idHash(forgotten))).toBe(true);
    await login(k);
    expect(rows(k).some((x) => x.id_hash === idHash(forgotten))).toBe(false);
  });

  it(`holds at most ${MAX_SESSIONS} sessions: logins past it end the oldest`, async () => {
    const oldest = await login(k);
    k.store.db.prepare("UPDATE console_sessions SET seen_at = seen_at - 60000 WHERE id_hash = ?").run(idHash(oldest));
    let last = "";
    for (let i = 0; i < MAX_SESSIONS + 20; i++) last = await login(k);
    expect(rows(k).length).toBe(MAX_SESSIONS);
    expect(await loggedIn(k, oldest)).toBe(false);
    expect(await loggedIn(k, last)).toBe(true);
  }, 120_000);
});

describe("console sessions across a restart", () => {
  it("a session and its pending message survive a restart of the node; a new API token ends it", async () => {
    const dataDir = tempDir();
    let k = await startTestKindling({}, dataDir);
    try {
      const cookie = await login(k);
      const before = await (await page(k, cookie)).text();
      const csrf = /name="_csrf" value="([^"]+)"/.exec(before)?.[1];
      expect(csrf).toBeTruthy();
      // Sets a message for the next page, which is only shown after the restart.
      expect((await page(k, cookie, "/ui/machines/52:54:00:77:77:77")).status).toBe(303);
      await k.stop({ keepData: true });
      k = await startTestKindling({}, dataDir);
      const after = await page(k, cookie);
      expect(after.status).toBe(200);
      const html = await after.text();
      expect(html).toContain("No machine 52:54:00:77:77:77");
      expect(html).toContain(`value="${csrf}"`);

      // A new token ends every session opened with the old one.
      await k.stop({ keepData: true });
      k = await startTestKindling({ apiToken: "rotated-token-0123456789" }, dataDir);
      const rotated = await page(k, cookie);
      expect(rotated.status).toBe(303);
      expect(rotated.headers.get("location")).toBe("/ui/login");
    } finally {
      await k.stop();
    }
  });
});
