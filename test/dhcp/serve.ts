/**
 * `kindling serve` as an operator runs it (the CLI, a YAML config, HTTP on 8080), inside a test namespace, and
 * the real client's side of an attack: busybox udhcpc timed from DISCOVER to lease, `/healthz` timed with curl,
 * the server's resident memory. Used by test/hostile/dhcp.test.ts and bench/hostile-dhcp.ts.
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { stringify } from "yaml";
import { databaseSetting } from "../helpers/database.ts";
import { clientScripts, tempDir, until } from "./harness.ts";
import type { Lab, Netns } from "./netns.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const TSX = join(ROOT, "node_modules/.bin/tsx");
export const HTTP_PORT = 8080;

export interface Served {
  output: string[];
  /** Largest resident set (MiB) among the server's processes (tsx runs the server in a child of its own). */
  rssMiB(): number;
  alive(): boolean;
  /** One Prometheus sample from /metrics, e.g. `kindling_dhcp_requests_total{outcome="malformed"}`. */
  metric(series: string): number;
  stop(): Promise<void>;
}

/**
 * Starts Kindling in `ns` with `dhcp` as its DHCP section; TFTP off, Flatcar origin on a closed port. `extra`
 * adds or replaces top-level settings (`database`, `postgres`, `logLevel`).
 */
export async function serve(
  lab: Lab,
  ns: Netns,
  server: string,
  dhcp: Record<string, unknown>,
  extra: Record<string, unknown> = {},
): Promise<Served & { dataDir: string }> {
  const dir = tempDir("kindling-serve-");
  const config = join(dir, "kindling.yaml");
  writeFileSync(
    config,
    stringify({
      dataDir: join(dir, "data"),
      advertise: server,
      apiToken: "hostile-test-token-0123456789",
      logLevel: "warn",
      http: { host: "0.0.0.0", port: HTTP_PORT },
      tftp: { port: 0 },
      dhcp,
      flatcar: { origin: "http://127.0.0.1:9/{channel}/{board}", signingKeyUrl: "http://127.0.0.1:9/key.asc" },
      ...("database" in extra ? {} : databaseSetting(join(dir, "data"))),
      ...extra,
    }),
  );
  const child = lab.adopt(ns.spawn([TSX, join(ROOT, "src/cli.ts"), "serve", "--config", config]));
  const output: string[] = [];
  child.stdout!.on("data", (d) => output.push(...String(d).split("\n").filter(Boolean)));
  child.stderr!.on("data", (d) => output.push(...String(d).split("\n").filter(Boolean)));
  await until("kindling serve answering /healthz", () => healthz(ns, server).ok || undefined, 60_000);
  const pids = () =>
    spawnSync("ip", ["netns", "pids", ns.name], { encoding: "utf8" }).stdout.split(/\s+/).filter(Boolean);
  return {
    output,
    dataDir: join(dir, "data"),
    rssMiB() {
      let max = 0;
      for (const pid of pids()) {
        try {
          const kb = Number(readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)?.[1] ?? 0);
          max = Math.max(max, kb / 1024);
        } catch {
          // exited in between
        }
      }
      return max;
    },
    alive: () => child.exitCode === null && child.signalCode === null,
    metric(series) {
      const r = ns.run(["curl", "-s", "--max-time", "5", `http://${server}:${HTTP_PORT}/metrics`], { allowFail: true });
      const line = r.stdout.split("\n").find((l) => l.startsWith(`${series} `));
      return line ? Number(line.slice(series.length + 1)) : Number.NaN;
    },
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/** GET /healthz from `ns`, at most 2 s. */
export function healthz(ns: Netns, server: string): { ok: boolean; ms: number } {
  const t = performance.now();
  const r = ns.run(
    ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2", `http://${server}:${HTTP_PORT}/healthz`],
    { allowFail: true, timeoutMs: 5000 },
  );
  return { ok: r.stdout.trim() === "200", ms: performance.now() - t };
}

let macs = 0;

/**
 * busybox udhcpc with a MAC the server has never seen, from DISCOVER to lease: 3 DISCOVERs 1 s apart at most.
 * Its script records the lease but leaves eth0 as it is (the attacker shares the interface).
 */
export function udhcpcOnce(ns: Netns): { ok: boolean; ms: number; line: string | undefined } {
  const scripts = clientScripts();
  const n = ++macs + (process.pid % 1000) * 1000;
  const mac = `02:cc:${[16, 8, 0].map((s) => ((n >> s) & 255).toString(16).padStart(2, "0")).join(":")}:01`;
  ns.ip("link", "set", "eth0", "address", mac);
  writeFileSync(scripts.udhcpc, `#!/bin/sh\necho "udhcpc $1 ip=$ip serverid=$serverid" >> ${scripts.log}\nexit 0\n`);
  const t = performance.now();
  const r = ns.run(["busybox", "udhcpc", "-f", "-q", "-n", "-i", "eth0", "-s", scripts.udhcpc, "-t", "3", "-T", "1"], {
    allowFail: true,
    timeoutMs: 10_000,
  });
  const line = scripts.lines().find((l) => l.startsWith("udhcpc bound"));
  return { ok: r.status === 0 && line !== undefined, ms: performance.now() - t, line };
}
