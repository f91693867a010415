/**
 * The API token, the URL signing key and console sessions of nodes sharing one PostgreSQL 15: real Kindling
 * nodes (startKindling, each with its own data dir, HTTP on loopback), real HTTP requests, the rows read back
 * from the database.
 */
import { execFile } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import { promisify } from "node:util";
import pg from "pg";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Signer } from "../../src/boot/sign.ts";
import { loadConfig } from "../../src/config.ts";
import { type Kindling, startKindling } from "../../src/server.ts";
import { PgDatabase } from "../../src/store/pg/database.ts";
import { migratePg } from "../../src/store/pg/migrate.ts";
import { PgSecrets } from "../../src/store/pg/secrets.ts";
import { freePort, tempDir } from "../helpers/kindling.ts";
import { startPostgres, type TestPostgres } from "../helpers/postgres.ts";

const BIN = join(import.meta.dirname, "..", "..", "bin", "kindling.js");
let pgs: TestPostgres;
const running: Node[] = [];

beforeAll(() => {
  pgs = startPostgres();
});
afterAll(async () => {
  for (const n of running.splice(0)) await n.k.close(0);
  pgs?.stop();
});

interface Node {
  k: Kindling;
  url: string;
  dataDir: string;
  /** Every log line the node wrote, parsed. */
  logs: Record<string, unknown>[];
}

async function startNode(
  opts: { database?: string; dataDir?: string; apiToken?: string; backoffMaxMs?: number } = {},
): Promise<Node> {
  const port = await freePort();
  const dataDir = opts.dataDir ?? tempDir();
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split("\n")) if (line) logs.push(JSON.parse(line));
      done();
    },
  });
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir,
      advertise: "127.0.0.1",
      ...(opts.apiToken ? { apiToken: opts.apiToken } : {}),
      ...(opts.database ? { database: opts.database } : {}),
      postgres: { backoffMinMs: 50, backoffMaxMs: opts.backoffMaxMs ?? 500 },
      http: { host: "127.0.0.1", port },
      tftp: { port: 0 },
      dhcp: { mode: "off" },
      flatcar: { origin: "http://127.0.0.1:9/{channel}/{board}", signingKeyUrl: "http://127.0.0.1:9/key.asc" },
    },
  });
  const k = await startKindling(config, pino({ level: "info" }, sink));
  const node = { k, url: `http://127.0.0.1:${port}`, dataDir, logs };
  running.push(node);
  return node;
}

async function stopNode(n: Node): Promise<void> {
  running.splice(running.indexOf(n), 1);
  await n.k.close(0);
}

async function sql<T extends pg.QueryResultRow>(database: string, text: string, values: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: pgs.url(database) });
  await c.connect();
  try {
    return (await c.query<T>(text, values)).rows;
  } finally {
    await c.end();
  }
}

const secretSources = (n: Node) => n.logs.find((l) => "apiToken" in l && "signingKey" in l);
const api = (n: Node, token: string) =>
  fetch(`${n.url}/api/v1/machines`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);
const fileOf = (n: Node, name: string) => readFileSync(join(n.dataDir, name), "utf8").trim();

const form = (fields: Record<string, string>, cookie?: string) => ({
  method: "POST",
  redirect: "manual" as const,
  headers: { "content-type": "application/x-www-form-urlencoded", ...(cookie ? { cookie } : {}) },
  body: new URLSearchParams(fields).toString(),
});

async function login(n: Node, token: string): Promise<{ cookie: string; csrf: string }> {
  const res = await fetch(`${n.url}/ui/login`, form({ token }));
  expect(res.status).toBe(303);
  const cookie = res.headers.get("set-cookie")!.split(";")[0]!;
  const page = await (await fetch(`${n.url}/ui/machines`, { headers: { cookie } })).text();
  const csrf = /name="_csrf" value="([^"]+)"/.exec(page)?.[1];
  expect(csrf).toBeTruthy();
  return { cookie, csrf: csrf! };
}

const page = (n: Node, cookie: string, path = "/ui/machines") =>
  fetch(`${n.url}${path}`, { headers: { cookie }, redirect: "manual" });

async function until(what: string, ok: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("secrets shared through PostgreSQL", () => {
  it("two nodes racing on an empty database store one token and one key; both serve with them", async () => {
    const name = await pgs.createDatabase("race");
    const [a, b] = await Promise.all([startNode({ database: pgs.url(name) }), startNode({ database: pgs.url(name) })]);
    const rows = await sql<{ name: string; value: string }>(name, "SELECT name, value FROM secrets ORDER BY name");
    expect(rows.map((r) => r.name)).toEqual(["api-token", "signing-key"]);
    const token = rows[0]!.value;
    const key = rows[1]!.value;
    expect(a.k.apiToken).toBe(token);
    expect(b.k.apiToken).toBe(token);
    // One node generated each, the other read it; the log names the source, never the value.
    const sources = [secretSources(a), secretSources(b)];
    expect(sources.map((s) => s?.apiToken).sort()).toEqual(["generated-in-postgres", "postgres"]);
    expect(sources.map((s) => s?.signingKey).sort()).toEqual(["generated-in-postgres", "postgres"]);
    for (const n of [a, b]) {
      expect(JSON.stringify(n.logs)).not.toContain(token);
      expect(JSON.stringify(n.logs)).not.toContain(key);
      // The shared value in the data dir, owner-only, for the local CLI.
      expect(fileOf(n, "api-token")).toBe(token);
      expect(fileOf(n, "signing-key")).toBe(key);
      expect(statSync(join(n.dataDir, "api-token")).mode & 0o777).toBe(0o600);
      expect(statSync(join(n.dataDir, "signing-key")).mode & 0o777).toBe(0o600);
      expect(await api(n, token)).toBe(200);
      expect(await api(n, "not-the-token-0123456789")).toBe(401);
    }
    // The real CLI, reading the token from one node's data dir, against the other node.
    const { KINDLING_API_TOKEN: _t, KINDLING_DATA_DIR: _d, ...cliEnv } = process.env;
    for (const [dir, server] of [
      [a.dataDir, b.url],
      [b.dataDir, a.url],
    ]) {
      const { stdout } = await promisify(execFile)(
        process.execPath,
        [BIN, "--server", server!, "--data-dir", dir!, "machines", "list", "--json"],
        { env: cliEnv, timeout: 60_000 },
      );
      expect(JSON.parse(stdout)).toEqual([]);
    }
    await Promise.all([stopNode(a), stopNode(b)]);
  });

  it("getOrCreate from six pools at once, twenty times: one value each time, one creator", async () => {
    const name = await pgs.createDatabase("getorcreate");
    const pools = Array.from({ length: 6 }, () => new PgDatabase({ url: pgs.url(name), poolMax: 2 }));
    try {
      await migratePg(pools[0]!);
      for (let round = 0; round < 20; round++) {
        await pools[0]!.query("DELETE FROM secrets");
        const results = await Promise.all(
          pools.map((p, i) => new PgSecrets(p).getOrCreate("api-token", () => `seed-${round}-${i}-0123456789abcdef`)),
        );
        const values = new Set(results.map((r) => r.value));
        expect(values.size).toBe(1);
        expect(results.filter((r) => r.created)).toHaveLength(1);
        const stored = await pools[0]!.query<{ value: string }>("SELECT value FROM secrets WHERE name = 'api-token'");
        expect(stored.rows.map((r) => r.value)).toEqual([...values]);
      }
    } finally {
      await Promise.all(pools.map((p) => p.close()));
    }
  });

  it("a node moving from SQLite keeps its token and key: URLs it signed verify on a second node", async () => {
    const name = await pgs.createDatabase("moving");
    // First on SQLite: token and key generated into the data dir; a URL handed out then.
    const solo = await startNode();
    const token = solo.k.apiToken;
    const oldKey = fileOf(solo, "signing-key");
    const signedBefore = Signer.fromFile(join(solo.dataDir, "signing-key")).query(
      "ignition",
      "52:54:00:12:34:56",
      3600,
    );
    await stopNode(solo);

    const a = await startNode({ database: pgs.url(name), dataDir: solo.dataDir });
    expect(secretSources(a)).toMatchObject({ apiToken: "file-to-postgres", signingKey: "file-to-postgres" });
    expect(a.k.apiToken).toBe(token);
    const b = await startNode({ database: pgs.url(name) });
    expect(secretSources(b)).toMatchObject({ apiToken: "postgres", signingKey: "postgres" });
    expect(await api(b, token)).toBe(200);
    expect(fileOf(b, "signing-key")).toBe(oldKey);

    // Each node's resolved key signs the same.
    const sa = Signer.fromFile(join(a.dataDir, "signing-key"));
    const sb = Signer.fromFile(join(b.dataDir, "signing-key"));
    const exp = Math.floor(Date.now() / 1000) + 600;
    expect(sb.sign("ignition", "52:54:00:12:34:56", exp)).toBe(sa.sign("ignition", "52:54:00:12:34:56", exp));
    expect(sb.verify("report", "52:54:00:12:34:56", String(exp), sa.sign("report", "52:54:00:12:34:56", exp))).toBe(
      "ok",
    );

    // Through HTTP: the genuine URL (signed before the move, on SQLite) gets past the signature check on B
    // (the machine is unknown there: 404, not 403); a tampered one is refused on both.
    const tampered = signedBefore.replace(/sig=([A-Za-z0-9_-])/, (_, c: string) => `sig=${c === "A" ? "B" : "A"}`);
    for (const n of [a, b]) {
      const genuine = await fetch(`${n.url}/ignition?${signedBefore}`);
      expect(genuine.status).not.toBe(403);
      expect((await fetch(`${n.url}/ignition?${tampered}`)).status).toBe(403);
    }
    await Promise.all([stopNode(a), stopNode(b)]);
  });

  it("a configured token wins on its node and is not shared; a weak token in the database stops start-up", async () => {
    const name = await pgs.createDatabase("configured");
    const a = await startNode({ database: pgs.url(name) });
    const own = "configured-token-0123456789";
    const c = await startNode({ database: pgs.url(name), apiToken: own });
    expect(secretSources(c)).toMatchObject({ apiToken: "config", signingKey: "postgres" });
    expect(await api(c, own)).toBe(200);
    expect(await api(c, a.k.apiToken)).toBe(401);
    expect(await api(a, own)).toBe(401);
    // A console session opened with the shared token is not one on the node that has its own.
    const s = await login(a, a.k.apiToken);
    expect((await page(a, s.cookie)).status).toBe(200);
    expect((await page(c, s.cookie)).headers.get("location")).toBe("/ui/login");
    expect((await sql<{ value: string }>(name, "SELECT value FROM secrets WHERE name = 'api-token'"))[0]!.value).toBe(
      a.k.apiToken,
    );
    await Promise.all([stopNode(a), stopNode(c)]);

    await sql(name, "UPDATE secrets SET value = 'short' WHERE name = 'api-token'");
    await expect(startNode({ database: pgs.url(name) })).rejects.toThrow(
      /shared token in PostgreSQL \(table secrets, name api-token\) is 5 characters/,
    );
  });

  it("a weak token file is not used as a seed when the database has a token; it is replaced", async () => {
    const name = await pgs.createDatabase("badfile");
    const a = await startNode({ database: pgs.url(name) });
    const dataDir = tempDir();
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(join(dataDir, "api-token"), "");
    const b = await startNode({ database: pgs.url(name), dataDir });
    expect(fileOf(b, "api-token")).toBe(a.k.apiToken);
    await Promise.all([stopNode(a), stopNode(b)]);
  });
});

describe("console sessions shared through PostgreSQL", () => {
  let name: string;
  let a: Node;
  let b: Node;
  let token: string;
  const count = async () =>
    Number((await sql<{ n: string }>(name, "SELECT count(*) AS n FROM console_sessions"))[0]!.n);

  beforeAll(async () => {
    name = await pgs.createDatabase("sessions");
    a = await startNode({ database: pgs.url(name) });
    b = await startNode({ database: pgs.url(name) });
    token = a.k.apiToken;
  });
  afterAll(async () => {
    for (const n of [a, b]) if (running.includes(n)) await stopNode(n);
  });

  it("a login on A is a login on B; B's flash shows on A; a logout on B ends it on A", async () => {
    const s = await login(a, token);
    expect((await page(b, s.cookie)).status).toBe(200);
    // The database holds an HMAC of the cookie's id under the token, never the id.
    const id = s.cookie.split("=")[1]!;
    const rows = await sql<{ id_hash: string }>(name, "SELECT id_hash FROM console_sessions");
    expect(rows.map((r) => r.id_hash)).toContain(createHmac("sha256", token).update(id).digest("hex"));
    expect(JSON.stringify(rows)).not.toContain(id);

    // A message set by a request on B is shown by the next page, on A.
    const missing = await page(b, s.cookie, "/ui/machines/52:54:00:99:99:99");
    expect(missing.status).toBe(303);
    expect(await (await page(a, s.cookie)).text()).toContain("No machine 52:54:00:99:99:99");
    expect(await (await page(a, s.cookie)).text()).not.toContain("No machine 52:54:00:99:99:99");

    const out = await fetch(`${b.url}/ui/logout`, form({ _csrf: s.csrf }, s.cookie));
    expect(out.status).toBe(303);
    const after = await page(a, s.cookie);
    expect(after.status).toBe(303);
    expect(after.headers.get("location")).toBe("/ui/login");
  });

  it("failed logins write no row", async () => {
    const before = await count();
    for (const t of ["", "wrong-token-0123456789", `${token}x`, token.slice(0, -1)]) {
      const r = await fetch(`${a.url}/ui/login`, form({ token: t }));
      expect(r.status).toBe(401);
      expect(r.headers.get("set-cookie")).toBeNull();
    }
    expect(await count()).toBe(before);
  });

  it("PostgreSQL unreachable: the console answers 503 with a message, not a login loop; back when it is", async () => {
    const s = await login(a, token);
    pgs.stopServer();
    try {
      const down = await page(a, s.cookie);
      expect(down.status).toBe(503);
      expect(await down.text()).toContain("database does not answer");
      const fragment = await fetch(`${a.url}/ui/machines/rows`, { headers: { cookie: s.cookie, "hx-request": "1" } });
      expect(fragment.status).toBe(503);
      // The right token cannot start a session now; a wrong one is still just refused.
      expect((await fetch(`${b.url}/ui/login`, form({ token }))).status).toBe(503);
      expect((await fetch(`${b.url}/ui/login`, form({ token: "wrong-token-0123456789" }))).status).toBe(401);
    } finally {
      pgs.start();
    }
    await until("the console answers again", async () => (await page(a, s.cookie)).status === 200);
    expect((await page(b, s.cookie)).status).toBe(200);
  });
});
