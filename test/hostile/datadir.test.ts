/**
 * Hostile-host hardening of the data dir (issue items 4, 7, 10), against real `kindling serve` processes:
 * one instance per data dir (a second names the first and binds nothing, even on the DHCP port that allows
 * shared binding), no start behind an empty/short/non-hex token or signing key, owner-only secrets.
 */
import { createHmac } from "node:crypto";
import { chmodSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { Lab } from "../dhcp/netns.ts";
import { freePort, TEST_TOKEN, tempDir } from "../helpers/kindling.ts";
import { loopbackFlags, type ServeProcess, startServe } from "./serve-process.ts";

const dirs: string[] = [];
const running: ServeProcess[] = [];
const data = () => {
  const d = tempDir("kindling-hostile-datadir-");
  dirs.push(d);
  return d;
};
afterEach(async () => {
  for (const p of running.splice(0)) {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
    await p.exited;
  }
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function serve(args: string[], opts: Parameters<typeof startServe>[1] = {}): ServeProcess {
  const p = startServe(args, opts);
  running.push(p);
  return p;
}

const mode = (path: string) => statSync(path).mode & 0o777;

/** Whether anything answers HTTP on the loopback port. */
const answers = (port: number) =>
  fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2000) }).then(
    () => true,
    () => false,
  );

describe("two kindling serve on one data dir", () => {
  it("the second refuses to start, naming the first (pid, listeners), and binds nothing — DHCP included", async () => {
    // DHCP binds the wildcard address, so both run inside a namespace of their own.
    const lab = new Lab("kdd");
    try {
      const ns = lab.ns("s");
      const dataDir = data();
      const dhcp = ["--dhcp-mode", "proxy", "--dhcp-port", "67", "--proxy-port", "4011"];
      const first = serve([...loopbackFlags(dataDir, 8080, dhcp), "--api-token", TEST_TOKEN], {
        prefix: ["ip", "netns", "exec", ns.name],
      });
      await first.waitFor("dhcp: listening");
      const second = serve([...loopbackFlags(dataDir, 8081, dhcp), "--api-token", TEST_TOKEN], {
        prefix: ["ip", "netns", "exec", ns.name],
      });
      expect(await second.exited).toBe(1);
      const msg = second.output();
      expect(msg).toContain(`data dir ${dataDir} is in use by another kindling serve: pid ${first.child.pid}`);
      expect(msg).toContain("HTTP 127.0.0.1:8080");
      expect(msg).toContain("DHCP (proxy) on UDP 67 and 4011");
      expect(msg).not.toContain("    at "); // one clear line, no stack trace
      // It never got as far as binding: only the first instance's sockets exist in the namespace.
      const udp = ns.run(["ss", "-Hulnp"]).stdout;
      expect(udp).toContain(":67 ");
      expect(new Set([...udp.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1])))).toEqual(new Set([first.child.pid]));
      expect(ns.run(["ss", "-Htlnp"]).stdout).not.toContain(":8081");
      // The first keeps serving.
      expect(ns.run(["curl", "-sf", "http://127.0.0.1:8080/healthz"]).status).toBe(0);
      first.child.kill("SIGTERM");
      expect(await first.exited).toBe(0);
    } finally {
      await lab.destroy();
    }
  }, 60_000);

  it("a killed instance leaves no stale lock: the next one starts at once", async () => {
    const dataDir = data();
    const first = serve(loopbackFlags(dataDir, await freePort(), ["--api-token", TEST_TOKEN]));
    await first.waitFor("HTTP listening");
    first.child.kill("SIGKILL");
    await first.exited;
    // What the killed one wrote about itself is still there, and does not matter.
    expect(JSON.parse(readFileSync(join(dataDir, "serve.json"), "utf8")).pid).toBe(first.child.pid);
    const port = await freePort();
    const next = serve(loopbackFlags(dataDir, port, ["--api-token", TEST_TOKEN]));
    await next.waitFor("HTTP listening");
    expect(await answers(port)).toBe(true);
    expect(JSON.parse(readFileSync(join(dataDir, "serve.json"), "utf8"))).toMatchObject({
      pid: next.child.pid,
      listeners: [`HTTP 127.0.0.1:${port}`],
    });
    next.child.kill("SIGTERM");
    expect(await next.exited).toBe(0);
  }, 60_000);
});

describe("api-token and signing-key files", () => {
  it.each([
    ["an empty api-token", "api-token", "", /apiToken: the token in .*api-token is empty/],
    ["a blank api-token", "api-token", "  \n", /apiToken: the token in .*api-token is empty/],
    ["a short api-token", "api-token", "abc123\n", /apiToken: the token in .*api-token is 6 characters/],
    ["an empty signing-key", "signing-key", "", /signing key .*signing-key is empty/],
    ["a non-hex signing-key", "signing-key", "zz".repeat(32), /signing key .*signing-key is not hex/],
    ["an odd-length signing-key", "signing-key", "a".repeat(65), /signing key .*signing-key is not hex/],
    ["a short signing-key", "signing-key", "ab".repeat(8), /signing key .*signing-key holds 8 bytes/],
  ])(
    "%s stops start-up with the key named, before anything listens",
    async (_, file, content, message) => {
      const dataDir = data();
      writeFileSync(join(dataDir, file), content, { mode: 0o600 });
      const port = await freePort();
      const p = serve(loopbackFlags(dataDir, port));
      expect(await p.exited).toBe(1);
      expect(p.output()).toMatch(message);
      expect(p.output()).not.toContain("    at ");
      expect(await answers(port)).toBe(false);
    },
    30_000,
  );

  it.each([
    ["--api-token", ["--api-token", "short"], {}, /apiToken: must be at least 16 characters \(from flag --api-token\)/],
    ["KINDLING_API_TOKEN", [], { KINDLING_API_TOKEN: "x y".repeat(8) }, /apiToken: must not contain whitespace/],
  ])(
    "a weak token from %s stops start-up naming it",
    async (_, flags, env, message) => {
      const p = serve(loopbackFlags(data(), await freePort(), flags), { env });
      expect(await p.exited).toBe(1);
      expect(p.output()).toMatch(message);
    },
    30_000,
  );

  it("a URL signed with the empty key is worthless: refused at start, and 403 once a real key exists", async () => {
    const dataDir = data();
    writeFileSync(join(dataDir, "signing-key"), "");
    const mac = "52:54:00:66:00:01";
    const exp = Math.floor(Date.now() / 1000) + 3600;
    const sig = createHmac("sha256", Buffer.alloc(0)).update(`ignition\n${mac}\n${exp}`).digest("base64url");
    const forged = `/ignition?mac=${encodeURIComponent(mac)}&exp=${exp}&sig=${sig}`;
    const port = await freePort();
    const refused = serve(loopbackFlags(dataDir, port, ["--api-token", TEST_TOKEN]));
    expect(await refused.exited).toBe(1);
    expect(refused.output()).toContain("signing-key is empty");

    // As the message says: delete it and a new key is generated.
    rmSync(join(dataDir, "signing-key"));
    const k = serve(loopbackFlags(dataDir, port, ["--api-token", TEST_TOKEN]));
    await k.waitFor("HTTP listening");
    const base = `http://127.0.0.1:${port}`;
    const add = await fetch(`${base}/api/v1/machines`, {
      method: "POST",
      headers: { authorization: `Bearer ${TEST_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ mac, profile: "flatcar-install" }),
    });
    expect(add.status).toBe(201);
    expect((await fetch(`${base}${forged}`)).status).toBe(403);
    expect(readFileSync(join(dataDir, "signing-key"), "utf8")).toMatch(/^[0-9a-f]{64}\n$/);
    k.child.kill("SIGTERM");
    await k.exited;
  }, 60_000);

  it("`token=` never logs in to the console, not even with an empty api-token file", async () => {
    const tryBlankLogins = async (port: number) => {
      const statuses: number[] = [];
      for (const body of ["token=", "token=+", "token=%20%20"]) {
        const r = await fetch(`http://127.0.0.1:${port}/ui/login`, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body,
          redirect: "manual",
          signal: AbortSignal.timeout(2000),
        }).catch(() => undefined);
        if (r) statuses.push(r.status);
      }
      return statuses;
    };
    // An empty token file (a crash during the first start): the console must not open to an empty token.
    const emptyDir = data();
    writeFileSync(join(emptyDir, "api-token"), "");
    const emptyPort = await freePort();
    const empty = serve(loopbackFlags(emptyDir, emptyPort));
    const seen: number[] = [];
    const deadline = Date.now() + 10_000;
    while (empty.child.exitCode === null && Date.now() < deadline) {
      seen.push(...(await tryBlankLogins(emptyPort)));
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(seen.filter((s) => s !== 401)).toEqual([]);
    expect(await empty.exited).toBe(1);

    // A running console with its generated token refuses blank ones too.
    const port = await freePort();
    const k = serve(loopbackFlags(data(), port));
    await k.waitFor("HTTP listening");
    expect(await tryBlankLogins(port)).toEqual([401, 401, 401]);
    k.child.kill("SIGTERM");
    await k.exited;
  }, 30_000);

  it("generated secrets and the database are owner-only; no temp file is left behind", async () => {
    const dataDir = data();
    const port = await freePort();
    const k = serve(loopbackFlags(dataDir, port));
    await k.waitFor("HTTP listening");
    // A write makes SQLite create its -wal and -shm files.
    const token = readFileSync(join(dataDir, "api-token"), "utf8").trim();
    expect(token.length).toBeGreaterThanOrEqual(16);
    const put = await fetch(`http://127.0.0.1:${port}/api/v1/machines`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ mac: "52:54:00:66:00:02" }),
    });
    expect(put.status).toBe(201);
    for (const f of ["api-token", "signing-key", "kindling.db", "kindling.db-wal", "kindling.db-shm"])
      expect([f, mode(join(dataDir, f)).toString(8)]).toEqual([f, "600"]);
    expect(readdirSync(dataDir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
    k.child.kill("SIGTERM");
    expect(await k.exited).toBe(0);
  }, 30_000);

  it("a database an older Kindling created 0644 is tightened to 0600 at start", async () => {
    const dataDir = data();
    const first = serve(loopbackFlags(dataDir, await freePort()));
    await first.waitFor("HTTP listening");
    first.child.kill("SIGTERM");
    await first.exited;
    const db = join(dataDir, "kindling.db");
    chmodSync(db, 0o644);
    const again = serve(loopbackFlags(dataDir, await freePort()));
    await again.waitFor("HTTP listening");
    expect(mode(db).toString(8)).toBe("600");
    again.child.kill("SIGTERM");
    await again.exited;
  }, 30_000);
});
