/** Starting Kindling's DHCP server and the scripted client inside test namespaces. */
import type { ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import type { DhcpStats } from "../../src/dhcp/server.ts";
import { databaseSetting } from "../helpers/database.ts";
import type { Lab, Netns } from "./netns.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const TSX = join(ROOT, "node_modules/.bin/tsx");

export interface Running {
  stats(): Promise<DhcpStats>;
  stop(): Promise<void>;
  /** Whether the server process is still running. */
  alive(): boolean;
  output: string[];
}

export interface ServerArgs {
  /**
   * A postgres:// URL: the leases go there (run-server.ts opens it as `kindling serve --database` does).
   * Unset: the suite's engine (test/helpers/database.ts); present but undefined: SQLite.
   */
  database?: string;
  config: Record<string, unknown>;
  advertise: string;
  dataDir: string;
  httpPort?: number;
  tftpEnabled?: boolean;
}

export async function startKindling(lab: Lab, ns: Netns, args: ServerArgs): Promise<Running> {
  const withDatabase = "database" in args ? args : { ...args, ...databaseSetting(args.dataDir) };
  const child: ChildProcess = lab.adopt(
    ns.spawn([TSX, join(ROOT, "test/dhcp/run-server.ts"), JSON.stringify(withDatabase)]),
  );
  const output: string[] = [];
  const waiters: ((line: string) => boolean)[] = [];
  createInterface({ input: child.stdout! }).on("line", (line) => {
    output.push(line);
    for (const w of [...waiters]) if (w(line)) waiters.splice(waiters.indexOf(w), 1);
  });
  child.stderr!.on("data", (d) => output.push(String(d)));
  const waitFor = (prefix: string, ms: number) =>
    new Promise<string>((res, rej) => {
      const t = setTimeout(
        () => rej(new Error(`no ${prefix} from run-server within ${ms} ms:\n${output.join("\n")}`)),
        ms,
      );
      child.once("exit", (code) => rej(new Error(`run-server exited (${code}):\n${output.join("\n")}`)));
      waiters.push((line) => {
        if (!line.startsWith(prefix)) return false;
        clearTimeout(t);
        res(line.slice(prefix.length).trim());
        return true;
      });
    });
  await waitFor("READY", 30_000);
  return {
    output,
    alive: () => child.exitCode === null && child.signalCode === null,
    async stats() {
      const p = waitFor("STATS", 10_000);
      child.stdin!.write("stats\n");
      return JSON.parse(await p) as DhcpStats;
    },
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.stdin!.end();
      await exited;
    },
  };
}

/** Runs the scripted client (test/dhcp/client.ts) in `ns` and returns its JSON result. */
export function runClient<T>(ns: Netns, scenario: Record<string, unknown>): T {
  const r = ns.run([TSX, join(ROOT, "test/dhcp/client.ts"), JSON.stringify(scenario)], { timeoutMs: 60_000 });
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as T;
}

/** Like runClient, without blocking: several clients (in several namespaces) run at once. */
export function runClientAsync<T>(ns: Netns, scenario: Record<string, unknown>, timeoutMs = 120_000): Promise<T> {
  const child = ns.spawn([TSX, join(ROOT, "test/dhcp/client.ts"), JSON.stringify(scenario)]);
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("exit", (code) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`client exited with ${code}:\n${out}`));
      else resolve(JSON.parse(out.trim().split("\n").pop()!) as T);
    });
  });
}

const tempDirs: string[] = [];

/** A fresh directory under the system temp dir, removed by removeTempDirs(). */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

export function removeTempDirs(): void {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** A temp dir with a client hook script that logs what the DHCP client saw and configures the address. */
export function clientScripts(): { dir: string; udhcpc: string; dhclient: string; log: string; lines(): string[] } {
  const dir = tempDir("kindling-dhcp-");
  const log = join(dir, "events.log");
  const udhcpc = join(dir, "udhcpc.sh");
  writeFileSync(
    udhcpc,
    `#!/bin/sh
echo "udhcpc $1 ip=$ip siaddr=$siaddr boot_file=$boot_file serverid=$serverid mask=$mask router=$router lease=$lease" >> ${log}
case "$1" in
  bound|renew) ip addr flush dev "$interface"; ip addr add "$ip/$mask" dev "$interface" ;;
  deconfig) ip addr flush dev "$interface" ;;
esac
exit 0
`,
  );
  const dhclient = join(dir, "dhclient.sh");
  writeFileSync(
    dhclient,
    `#!/bin/sh
echo "dhclient $reason ip=$new_ip_address mask=$new_subnet_mask routers=$new_routers server=$new_dhcp_server_identifier old=$old_ip_address" >> ${log}
case "$reason" in
  BOUND|RENEW|REBIND|REBOOT) ip addr flush dev "$interface"; ip addr add "$new_ip_address/$new_subnet_mask" dev "$interface" ;;
  RELEASE|EXPIRE|STOP) ip addr flush dev "$interface" ;;
esac
exit 0
`,
  );
  chmodSync(udhcpc, 0o755);
  chmodSync(dhclient, 0o755);
  return {
    dir,
    udhcpc,
    dhclient,
    log,
    lines: () => (existsSync(log) ? readFileSync(log, "utf8").trim().split("\n") : []),
  };
}

export async function until<T>(what: string, fn: () => T | undefined, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
