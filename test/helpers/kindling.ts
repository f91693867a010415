import { createSocket } from "node:dgram";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Signer } from "../../src/boot/sign.ts";
import { type Config, loadConfig } from "../../src/config.ts";
import { silentLogger } from "../../src/log.ts";
import { type Kindling, startKindling } from "../../src/server.ts";
import { databaseSetting, dropDatabaseFor } from "./database.ts";

export const TEST_TOKEN = "test-token-0123456789abcdef";

/** A TCP port nobody listens on right now (loopback). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A UDP port nobody is bound to right now (loopback). */
export function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket("udp4");
    s.once("error", reject);
    s.bind(0, "127.0.0.1", () => {
      const port = s.address().port;
      s.close(() => resolve(port));
    });
  });
}

export function tempDir(prefix = "kindling-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

// biome-ignore lint/suspicious/noExplicitAny: JSON bodies in tests are read loosely
export type JsonResponse = Omit<Response, "json"> & { json(): Promise<any> };

export interface Running extends Kindling {
  url: string;
  dataDir: string;
  /** fetch against the API with the bearer token; tests read loosely typed JSON back. */
  api(path: string, init?: RequestInit & { json?: unknown }): Promise<JsonResponse>;
  /** Stops the server and removes its data dir (unless keepData). */
  stop(opts?: { keepData?: boolean }): Promise<void>;
}

/**
 * The real server on loopback with a temp data dir; only HTTP unless overrides enable more. Its store is the
 * suite's engine (test/helpers/database.ts) unless overrides name a `database` (undefined: SQLite).
 */
export async function startTestKindling(
  overrides: Record<string, unknown> = {},
  dataDir = tempDir(),
): Promise<Running> {
  const port = await freePort();
  const config: Config = loadConfig({
    env: {},
    overrides: {
      dataDir,
      advertise: "127.0.0.1",
      apiToken: TEST_TOKEN,
      logLevel: "silent",
      http: { host: "127.0.0.1", port },
      tftp: { port: 0 },
      dhcp: { mode: "off" },
      // A closed loopback port: a test that forgets to set up an origin fails fast and never reaches the internet.
      flatcar: { origin: "http://127.0.0.1:9/{channel}/{board}", signingKeyUrl: "http://127.0.0.1:9/key.asc" },
      ...("database" in overrides ? {} : databaseSetting(dataDir)),
      ...overrides,
    },
  });
  const k = await startKindling(config, silentLogger);
  const url = `http://127.0.0.1:${port}`;
  return {
    ...k,
    url,
    dataDir,
    api: (path, init = {}) => {
      const { json, ...rest } = init;
      return fetch(`${url}/api/v1${path}`, {
        ...rest,
        headers: {
          authorization: `Bearer ${TEST_TOKEN}`,
          ...(json !== undefined ? { "content-type": "application/json" } : {}),
          ...rest.headers,
        },
        ...(json !== undefined ? { body: JSON.stringify(json) } : {}),
      });
    },
    async stop(opts = {}) {
      await k.close();
      if (opts.keepData) return;
      rmSync(dataDir, { recursive: true, force: true });
      dropDatabaseFor(dataDir);
    },
  };
}

/**
 * What a machine reports over the URL Kindling signs for it (`install-started`, `install-done`, …), sent the
 * way the installer sends it: tests move a machine along its lifecycle through the product's own path, which
 * holds on every engine (a state written into the node's file would be overwritten by PostgreSQL's).
 */
export async function report(k: Running, mac: string, kind: string): Promise<void> {
  const signer = Signer.fromFile(join(k.dataDir, "signing-key"));
  const r = await fetch(`${k.url}/report?${signer.query("report", mac, 60)}&kind=${kind}`, { method: "POST" });
  if (r.status !== 200) throw new Error(`report ${kind} for ${mac}: ${r.status} ${await r.text()}`);
}
