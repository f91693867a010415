import type { ChildProcess } from "node:child_process";
import { copyFileSync, createWriteStream, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { databaseSetting } from "../../helpers/database.ts";
import type { Netns } from "./netns.ts";
import { REPO } from "./paths.ts";
import { waitForHttp } from "./peers.ts";

export const HTTP_PORT = 8080;
const TOKEN = "e2e-api-token-0123456789abcdef";

export interface KindlingOptions {
  ns: Netns;
  workDir: string;
  /** `off`: a node that serves only HTTP (and TFTP), beside another node on the segment that answers DHCP. */
  dhcp: "full" | "proxy" | "off";
  /** Files put under <dataDir>/assets/e2e/ (name → source path). */
  assets: Record<string, string>;
  /** Files put under <dataDir>/loaders/ (name → source path), as an operator adds a loader Debian's packages on this host lack. */
  loaders?: Record<string, string>;
  defaultProfile?: string;
  retrySeconds?: number;
  /**
   * One of several nodes sharing `database`: its `nodeName`, and the suffix of its files in workDir
   * (`kindling-<node>.log`, `data-<node>/`), so two nodes can share one scenario directory.
   */
  node?: string;
  /** A `postgres://` URL (test/helpers/postgres.ts); unset, the node's SQLite file. */
  database?: string;
}

export interface KindlingEvent {
  mac: string | null;
  kind: string;
  detail: Record<string, unknown>;
  at: string;
  /** The node that recorded it, on nodes sharing a database. */
  node?: string;
}

export interface ApiResponse {
  status: number;
  body: unknown;
  text: string;
}

/**
 * Kindling as an operator runs it: `kindling serve --config <yaml>` inside the namespace on the standard
 * ports, talked to over its HTTP API with curl (also inside the namespace: nothing is reachable from outside).
 */
export class Kindling {
  readonly dataDir: string;
  readonly logFile: string;
  readonly baseUrl: string;
  private readonly proc: ChildProcess;
  private readonly ns: Netns;

  private constructor(opts: KindlingOptions) {
    const { ns, workDir } = opts;
    this.ns = ns;
    const suffix = opts.node ? `-${opts.node}` : "";
    this.dataDir = join(workDir, `data${suffix}`);
    this.logFile = join(workDir, `kindling${suffix}.log`);
    this.baseUrl = `http://${ns.serverIp}:${HTTP_PORT}`;
    const assets = join(this.dataDir, "assets", "e2e");
    mkdirSync(assets, { recursive: true });
    for (const [name, src] of Object.entries(opts.assets)) copyFileSync(src, join(assets, name));
    const loaders = join(this.dataDir, "loaders");
    mkdirSync(loaders, { recursive: true });
    for (const [name, src] of Object.entries(opts.loaders ?? {})) copyFileSync(src, join(loaders, name));
    const config = {
      dataDir: this.dataDir,
      ...(opts.node ? { nodeName: opts.node } : {}),
      // A short reconnect backoff cap, so a node finds a restarted PostgreSQL within seconds. Without a
      // database of its own, the suite's engine (test/helpers/database.ts).
      ...(opts.database
        ? { database: opts.database, postgres: { backoffMaxMs: 1000 } }
        : databaseSetting(this.dataDir)),
      logLevel: "debug",
      advertise: ns.serverIp,
      apiToken: TOKEN,
      strictListeners: true,
      http: { host: "0.0.0.0", port: HTTP_PORT },
      // TFTP roots left at their default (the project's ipxe/bin, else Debian's /usr/lib/ipxe), as an operator would.
      tftp: { port: 69 },
      // With `off`, the rest of this section is unused.
      dhcp: {
        mode: opts.dhcp,
        port: 67,
        proxyPort: 4011,
        interfaces: [ns.bridge],
        ...(opts.dhcp === "full"
          ? {
              subnets: [
                { cidr: `${ns.prefix}.0/24`, ranges: [{ start: `${ns.prefix}.100`, end: `${ns.prefix}.199` }] },
              ],
            }
          : {}),
      },
      boot: {
        ...(opts.defaultProfile ? { defaultProfile: opts.defaultProfile } : {}),
        ...(opts.retrySeconds ? { retrySeconds: opts.retrySeconds } : {}),
      },
    };
    const configFile = join(workDir, `kindling${suffix}.yaml`);
    writeFileSync(configFile, stringify(config));
    const tsx = join(REPO, "node_modules", ".bin", "tsx");
    this.proc = ns.spawn(tsx, [join(REPO, "src", "cli.ts"), "serve", "--config", configFile], {
      cwd: REPO,
      env: { ...process.env, NODE_ENV: "production" },
    });
    const out = createWriteStream(this.logFile);
    this.proc.stdout!.pipe(out, { end: false });
    this.proc.stderr!.pipe(out, { end: false });
  }

  static async start(opts: KindlingOptions): Promise<Kindling> {
    const k = new Kindling(opts);
    let onExit: ((code: number | null) => void) | undefined;
    const exited = new Promise<never>((_, reject) => {
      onExit = (code) => reject(new Error(`kindling serve exited with ${code} during start-up; see ${k.logFile}`));
      k.proc.once("exit", onExit);
    });
    try {
      await Promise.race([waitForHttp(opts.ns, HTTP_PORT, 60_000), exited]);
    } finally {
      // Only start-up failures are this promise's business; a later exit is stop() or shows in the test.
      k.proc.off("exit", onExit!);
    }
    return k;
  }

  /** One API call with curl inside the namespace. */
  api(method: string, path: string, body?: unknown): ApiResponse {
    const args = [
      "-sS",
      "-X",
      method,
      "-H",
      `Authorization: Bearer ${TOKEN}`,
      "-w",
      "\n%{http_code}",
      "--max-time",
      "10",
    ];
    if (body !== undefined) args.push("-H", "Content-Type: application/json", "--data-binary", "@-");
    const out = this.ns.exec(
      "curl",
      [...args, `${this.baseUrl}/api/v1${path}`],
      body === undefined ? undefined : JSON.stringify(body),
    );
    const cut = out.lastIndexOf("\n");
    const text = out.slice(0, cut);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      /* not JSON: keep the text */
    }
    return { status: Number(out.slice(cut + 1)), body: parsed, text };
  }

  /** Like api(), but throws unless the status is 2xx. */
  call(method: string, path: string, body?: unknown): unknown {
    const r = this.api(method, path, body);
    if (r.status < 200 || r.status > 299) throw new Error(`${method} ${path} → ${r.status}: ${r.text}`);
    return r.body;
  }

  /** GET a boot URL (no token), as the VM would, returning the raw body. */
  fetch(url: string): Buffer {
    return Buffer.from(this.ns.exec("curl", ["-sS", "--fail", "--max-time", "10", url]), "utf8");
  }

  /** Events (all, or one machine's), oldest first. TFTP events carry the client's IP, not a MAC. */
  events(mac?: string): KindlingEvent[] {
    const query = mac ? `mac=${encodeURIComponent(mac)}&limit=10000` : "limit=10000";
    const list = this.call("GET", `/events?${query}`) as KindlingEvent[];
    return [...list].reverse();
  }

  stop(): void {
    if (this.proc.exitCode === null) this.proc.kill("SIGTERM");
  }
}
