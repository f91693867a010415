import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MASK, maskIgnition } from "../../src/http/ui/mask.ts";
import { type Running, startTestKindling, TEST_TOKEN } from "../helpers/kindling.ts";

let k: Running;
beforeAll(async () => {
  k = await startTestKindling();
});
afterAll(async () => {
  await k?.stop();
});

const form = (fields: Record<string, string>) => ({
  method: "POST",
  redirect: "manual" as const,
  headers: { "content-type": "application/x-www-form-urlencoded" },
  body: new URLSearchParams(fields).toString(),
});

async function login(): Promise<{ cookie: string; csrf: string }> {
  const res = await fetch(`${k.url}/ui/login`, form({ token: TEST_TOKEN }));
  expect(res.status).toBe(303);
  const cookie = res.headers.get("set-cookie")!.split(";")[0]!;
  const page = await (await fetch(`${k.url}/ui/machines`, { headers: { cookie } })).text();
  const csrf = /name="_csrf" value="([^"]+)"/.exec(page)?.[1];
  expect(csrf).toBeTruthy();
  return { cookie, csrf: csrf! };
}

describe("console over plain HTTP", () => {
  it("refuses a wrong token and sends pages to the login without a session", async () => {
    const bad = await fetch(`${k.url}/ui/login`, form({ token: "not-the-token" }));
    expect(bad.status).toBe(401);
    expect(bad.headers.get("set-cookie")).toBeNull();
    expect(await bad.text()).toContain("not the API token");

    const page = await fetch(`${k.url}/ui/machines`, { redirect: "manual" });
    expect(page.status).toBe(303);
    expect(page.headers.get("location")).toBe("/ui/login");
    const fragment = await fetch(`${k.url}/ui/machines/rows`, { headers: { "hx-request": "true" } });
    expect(fragment.status).toBe(401);
  });

  it("sets an HttpOnly, SameSite=Strict session cookie scoped to /ui", async () => {
    const res = await fetch(`${k.url}/ui/login`, form({ token: TEST_TOKEN }));
    const cookie = res.headers.get("set-cookie")!;
    expect(cookie).toMatch(/^kindling_session=[A-Za-z0-9_-]{40,};/);
    expect(cookie).toMatch(/; HttpOnly/i);
    expect(cookie).toMatch(/; SameSite=Strict/i);
    expect(cookie).toMatch(/; Path=\/ui/);
  });

  it("refuses a POST without the CSRF token (403) and with someone else's", async () => {
    const a = await login();
    const b = await login();
    await k.api("/machines", { method: "POST", json: { mac: "52:54:00:00:00:01" } });
    const none = await fetch(`${k.url}/ui/machines/52:54:00:00:00:01/assign`, {
      ...form({ profile: "flatcar-install" }),
      headers: { ...form({}).headers, cookie: a.cookie },
    });
    expect(none.status).toBe(403);
    const other = await fetch(`${k.url}/ui/machines/52:54:00:00:00:01/assign`, {
      ...form({ profile: "flatcar-install", _csrf: b.csrf }),
      headers: { ...form({}).headers, cookie: a.cookie },
    });
    expect(other.status).toBe(403);
    expect((await k.api("/machines/52:54:00:00:00:01").then((r) => r.json())).profile).toBeNull();

    const ok = await fetch(`${k.url}/ui/machines/52:54:00:00:00:01/assign`, {
      ...form({ profile: "flatcar-install", hostname: "node-1", _csrf: a.csrf }),
      headers: { ...form({}).headers, cookie: a.cookie },
    });
    expect(ok.status).toBe(303);
    const m = await k.api("/machines/52:54:00:00:00:01").then((r) => r.json());
    expect(m).toMatchObject({ profile: "flatcar-install", hostname: "node-1", state: "ready" });
    // The flash message of that action shows once on the page it redirected to.
    const page = await (await fetch(`${k.url}${ok.headers.get("location")}`, { headers: { cookie: a.cookie } })).text();
    expect(page).toContain("now boots profile flatcar-install");
  });

  it("logs out: the session stops working", async () => {
    const s = await login();
    const out = await fetch(`${k.url}/ui/logout`, {
      ...form({ _csrf: s.csrf }),
      headers: { ...form({}).headers, cookie: s.cookie },
    });
    expect(out.status).toBe(303);
    const after = await fetch(`${k.url}/ui/machines`, { headers: { cookie: s.cookie }, redirect: "manual" });
    expect(after.headers.get("location")).toBe("/ui/login");
  });

  it("answers unreadable form data with 400, logged in or not", async () => {
    const broken = {
      method: "POST",
      headers: { "content-type": "multipart/form-data; boundary=x" },
      body: "not multipart at all",
    };
    expect((await fetch(`${k.url}/ui/login`, broken)).status).toBe(400);
    const s = await login();
    const res = await fetch(`${k.url}/ui/discovered/assign`, {
      ...broken,
      headers: { ...broken.headers, cookie: s.cookie },
    });
    expect(res.status).toBe(400);
    expect((await fetch(`${k.url}/healthz`)).status).toBe(200);
  });

  it("serves htmx from the package, not a CDN", async () => {
    const res = await fetch(`${k.url}/ui/static/htmx.min.js`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("javascript");
    expect(await res.text()).toContain("htmx");
  });

  it("echoes a sane X-Request-Id and makes one up otherwise", async () => {
    const echoed = await fetch(`${k.url}/healthz`, { headers: { "x-request-id": "rack-7-abc" } });
    expect(echoed.headers.get("x-request-id")).toBe("rack-7-abc");
    const made = await fetch(`${k.url}/healthz`, { headers: { "x-request-id": "bad id <script>" } });
    expect(made.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe("maskIgnition", () => {
  it("masks hashes, keys, key files, signed URLs and metadata values, and keeps the rest", () => {
    const config = {
      ignition: {
        version: "3.4.0",
        config: { replace: { source: "http://k/ignition/final?mac=x&exp=1&sig=SECRETSIG" } },
      },
      passwd: { users: [{ name: "core", passwordHash: "$6$hash", sshAuthorizedKeys: ["ssh-ed25519 AAAA"] }] },
      storage: {
        files: [
          { path: "/etc/ssh/ssh_host_ed25519_key", contents: { source: "data:,PRIVATE" } },
          { path: "/opt/api.key.pem", contents: { source: "data:;base64,UFJJVg==" } },
          { path: "/etc/hostname", contents: { source: "data:,node-1" } },
          { path: "/etc/motd", contents: { source: "data:,welcome%20s3cr3t-token" } },
          {
            path: "/opt/install.sh",
            contents: { source: "data:,FINAL%3D'http%3A%2F%2Fk%2Fignition%2Ffinal%3Fmac%3Dx%26sig%3DENCODEDSIG'" },
          },
          { path: "/opt/blob", contents: { source: "data:;base64,AAECAw==" } },
        ],
      },
    };
    const out = JSON.stringify(maskIgnition(config, ["s3cr3t-token"]));
    for (const secret of ["$6$hash", "ssh-ed25519", "PRIVATE", "UFJJVg", "SECRETSIG", "ENCODEDSIG", "s3cr3t-token"])
      expect(out).not.toContain(secret);
    expect(out).toContain("data:,node-1");
    expect(out).toContain("FINAL='http://k/ignition/final?mac=x&sig=");
    expect(out).toContain("(4 bytes, binary)");
    expect(out).toContain("/etc/ssh/ssh_host_ed25519_key");
    expect(out).toContain(MASK);
  });
});
