/**
 * A real PostgreSQL 15 (Debian's `postgresql` package) for tests and benchmarks: a throwaway cluster in a temp
 * dir, listening only on a unix socket in that dir (no TCP port, so parallel test files never collide and
 * nothing is reachable from the network). Unix sockets also cross network namespaces, so a server started in
 * one (Kea in bench/dhcp.sh) reaches it by path. Tests run as root and PostgreSQL refuses to, so the cluster
 * runs as the `postgres` user.
 */
import { type SpawnSyncReturns, spawnSync } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import pg from "pg";

export const BIN = "/usr/lib/postgresql/15/bin";
/** Bound on initdb, start and stop: each takes well under a second here. */
const STEP_TIMEOUT_S = 60;

export interface TestPostgres {
  /** Directory holding the socket (`.s.PGSQL.5432`): libpq's and node-postgres' `host` for it. */
  socketDir: string;
  /** A connection URL for `database` over the socket, as the `postgres` superuser. */
  url(database: string): string;
  /** Creates an empty database with a fresh name (prefix + counter) and returns its name. */
  createDatabase(prefix?: string): Promise<string>;
  dropDatabase(name: string): Promise<void>;
  /** The postmaster's pid: its backends are its children (benchmarks pin and meter them). */
  postmasterPid(): number;
  /** Stops the cluster (in-flight connections are cut) and starts it again on the same data. */
  restart(): void;
  /** Stops the cluster without removing it; `start()` brings it back. */
  stopServer(): void;
  start(): void;
  /** Stops the cluster and removes its directory. */
  stop(): void;
}

/** A connection URL for `database` on the cluster whose socket is in `socketDir`, as the `postgres` superuser. */
export function socketUrl(socketDir: string, database: string): string {
  return `postgresql://postgres@/${database}?host=${encodeURIComponent(socketDir)}`;
}

const asRoot = () => userInfo().uid === 0;

function run(cmd: string, args: string[]): SpawnSyncReturns<string> {
  // PostgreSQL refuses to run as root; runuser drops to its own user without a login shell.
  const argv = asRoot() ? ["runuser", "-u", "postgres", "--", cmd, ...args] : [cmd, ...args];
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8", timeout: (STEP_TIMEOUT_S + 10) * 1000 });
  if (r.error || r.status !== 0)
    throw new Error(`${argv.join(" ")} failed (${r.error?.message ?? `exit ${r.status}`}):\n${r.stdout}${r.stderr}`);
  return r;
}

/**
 * Starts a cluster. `durable: false` (tests) turns fsync off: the data is thrown away anyway and commits get
 * cheaper; benchmarks keep PostgreSQL's defaults so every server measured pays for real commits.
 */
export function startPostgres(opts: { durable?: boolean; maxConnections?: number } = {}): TestPostgres {
  if (!existsSync(join(BIN, "initdb")))
    throw new Error(`${BIN}/initdb not found: install Debian's postgresql package (contrib/setup-debian.sh)`);
  const dir = mkdtempSync(join(tmpdir(), "kindling-pg-"));
  if (asRoot()) {
    const pw = spawnSync("id", ["-u", "postgres"], { encoding: "utf8" });
    const gr = spawnSync("id", ["-g", "postgres"], { encoding: "utf8" });
    chownSync(dir, Number(pw.stdout.trim()), Number(gr.stdout.trim()));
  }
  const data = join(dir, "data");
  const log = join(dir, "server.log");
  let running = false;
  const serverOpts = [
    `-k ${dir}`,
    "-c listen_addresses=",
    // Enough for a few pools of a few connections per test file plus the migration tests' extra clients; the
    // suite's shared cluster (KINDLING_TEST_DATABASE) asks for more, one pool per running Kindling.
    `-c max_connections=${opts.maxConnections ?? 100}`,
    ...(opts.durable ? [] : ["-F"]),
  ].join(" ");

  const start = () => {
    try {
      run(`${BIN}/pg_ctl`, ["-D", data, "-l", log, "-w", "-t", String(STEP_TIMEOUT_S), "-o", serverOpts, "start"]);
    } catch (err) {
      const tail = existsSync(log) ? readFileSync(log, "utf8").slice(-2000) : "";
      throw new Error(`${(err as Error).message}\nserver log:\n${tail}`);
    }
    running = true;
  };
  const stopServer = () => {
    if (!running) return;
    run(`${BIN}/pg_ctl`, ["-D", data, "-m", "immediate", "-w", "-t", String(STEP_TIMEOUT_S), "stop"]);
    running = false;
  };
  // A test process that dies without its afterAll still takes its cluster down.
  const onExit = () => {
    try {
      stopServer();
    } catch {
      // Exiting anyway; nothing more can be done.
    }
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    run(`${BIN}/initdb`, ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"]);
    start();
  } catch (err) {
    onExit();
    throw err;
  }
  process.once("exit", onExit);

  const url = (database: string) => socketUrl(dir, database);
  let databases = 0;
  const admin = async (sql: string) => {
    const client = new pg.Client({ connectionString: url("postgres") });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  return {
    socketDir: dir,
    url,
    async createDatabase(prefix = "kindling") {
      const name = `${prefix.replace(/[^a-z0-9_]/gi, "_").toLowerCase()}_${++databases}`;
      await admin(`CREATE DATABASE ${name}`);
      return name;
    },
    async dropDatabase(name) {
      await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
    postmasterPid: () => Number(readFileSync(join(data, "postmaster.pid"), "utf8").split("\n")[0]),
    restart() {
      stopServer();
      start();
    },
    stopServer,
    start,
    stop() {
      process.off("exit", onExit);
      onExit();
    },
  };
}
