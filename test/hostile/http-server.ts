import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { type Agent, request } from "node:http";
import { dirname, join } from "node:path";
import { stringify } from "yaml";
import { databaseSetting } from "../helpers/database.ts";
import { freePort, freeUdpPort, type JsonResponse, TEST_TOKEN, tempDir } from "../helpers/kindling.ts";

const BIN = join(import.meta.dirname, "..", "..", "bin", "kindling.js");

/** A real `kindling serve` process on loopback (HTTP, and TFTP when asked), its JSON log collected line by line. */
export interface Served {
  url: string;
  pid: number;
  tftpPort: number | undefined;
  dataDir: string;
  /** Log lines so far, parsed. */
  log(): { msg: string; level: number; [k: string]: unknown }[];
  /** Resident set size of the server process, in bytes. */
  rss(): number;
  api(path: string, init?: RequestInit & { json?: unknown }): Promise<JsonResponse>;
  stop(): Promise<void>;
}

/** `opts.bin`: another build's `bin/kindling.js` (bench/hostile-http.ts runs the same attacks against two builds). */
export async function serve(
  config: Record<string, unknown> = {},
  opts: { tftp?: boolean; bin?: string } = {},
): Promise<Served> {
  const dataDir = tempDir("kindling-hostile-");
  const port = await freePort();
  const tftpPort = opts.tftp ? await freeUdpPort() : undefined;
  const file = join(dataDir, "kindling.yaml");
  writeFileSync(
    file,
    stringify({
      dataDir,
      advertise: "127.0.0.1",
      apiToken: TEST_TOKEN,
      logLevel: "info",
      http: { host: "127.0.0.1", port },
      tftp: { host: "127.0.0.1", port: tftpPort ?? 0, roots: [dataDir] },
      dhcp: { mode: "off" },
      flatcar: { origin: "http://127.0.0.1:9/{channel}/{board}", signingKeyUrl: "http://127.0.0.1:9/key.asc" },
      ...databaseSetting(dataDir),
      ...config,
    }),
  );
  const bin = opts.bin ?? BIN;
  // In the build's own checkout: tsx takes the JSX settings from the tsconfig.json it finds there.
  const child: ChildProcess = spawn(process.execPath, [bin, "serve", "--config", file], {
    cwd: join(dirname(bin), ".."),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (err += d));
  const exited = new Promise<void>((r) => child.on("exit", () => r()));
  const deadline = Date.now() + 30_000;
  while (!out.includes("HTTP listening") && Date.now() < deadline && child.exitCode === null)
    await new Promise((r) => setTimeout(r, 100));
  if (!out.includes("HTTP listening")) {
    child.kill("SIGKILL");
    throw new Error(`kindling serve did not start:\n${out}\n${err}`);
  }
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    pid: child.pid!,
    tftpPort,
    dataDir,
    log: () =>
      out
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l)),
    rss: () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"))![1]) * 1024,
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
    async stop() {
      child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(killer);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A GET over node:http, so the source address can be chosen (any 127.0.0.0/8 address works on loopback). */
export function get(
  url: string,
  opts: { agent?: Agent; localAddress?: string; timeoutMs?: number } = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: opts.agent, localAddress: opts.localAddress }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode!, body }));
      res.on("error", reject);
    });
    req.setTimeout(opts.timeoutMs ?? 10_000, () => req.destroy(new Error(`GET ${url}: timed out`)));
    req.on("error", reject);
    req.end();
  });
}

/** Runs `count` tasks, `concurrency` at a time. */
export async function pool(count: number, concurrency: number, task: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) await task(next++);
    }),
  );
}
