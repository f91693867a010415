/**
 * Driver for bench/dhcp.sh. For each server: raise perfdhcp's rate step by step (a fresh server and fresh
 * clients per step) until more than 1 % of DORA exchanges fail; the last rate that held is the score.
 * perfdhcp plays a relay (giaddr = its address), which all servers serve from the same /10 pool.
 *
 * With --pg, a PostgreSQL 15 cluster (test/helpers/postgres.ts, PostgreSQL's durable defaults) runs for the
 * whole run and each step of a PostgreSQL column gets a fresh database in it: `kea-pg` is Kea with its
 * lease-database on PostgreSQL (schema from `kea-admin db-init pgsql`), `kindling-pg` (--kindling-pg) is
 * Kindling with `database` pointing there, `kindling-pg-2` two such nodes on one segment (a bridge in the
 * client's namespace; perfdhcp broadcasts and takes each DISCOVER's first OFFER). PostgreSQL shares the server's CPU, and its CPU time counts as
 * the server's: one box running the DHCP server and its database, the load generator on the other core.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ServerArgs, startKindling, until } from "../test/dhcp/harness.ts";
import { Lab, type Netns } from "../test/dhcp/netns.ts";
import { startPostgres, type TestPostgres } from "../test/helpers/postgres.ts";

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1];
const flag = (name: string) => process.argv.includes(`--${name}`);
const SECONDS = Number(arg("seconds") ?? 3);
const ONLY = (
  arg("only") ??
  ["kindling,dnsmasq,kea", flag("pg") ? "kea-pg,kea-pg-mt" : "", flag("kindling-pg") ? "kindling-pg,kindling-pg-2" : ""]
    .filter(Boolean)
    .join(",")
).split(",");
// The ladder goes past the measured ceilings (perfdhcp itself included) so the top step is a real limit.
const LADDER = [
  200, 300, 450, 700, 1000, 1250, 1500, 1800, 2200, 2700, 3300, 4000, 5000, 6000, 7500, 9000, 11000, 13500, 16500,
  18000, 19000, 20000, 21000, 22000, 23000, 24000, 26000, 28000, 30000, 33000, 36000, 40000,
];
const RATES = arg("rates")?.split(",").map(Number) ?? LADDER;
const SERVER = "10.64.0.1";
const CLIENT = "10.64.0.2";
/** The second node of a two-node peer, on the same segment (a bridge in the client's namespace). */
const SERVER2 = "10.64.0.3";
// A /10: a step of 24,000/s for 3 s needs 72,000 addresses, more than a /16 holds. With a /16 the top steps
// measured pool exhaustion (every server stopped at the same 65,265 leases), not speed.
const CIDR = "10.64.0.0/10";
const POOL = { start: "10.64.1.0", end: "10.127.255.250" };
const NETMASK = "255.192.0.0";
/**
 * perfdhcp runs single-threaded on CPU 0 and the server (all its threads) on CPU 1. perfdhcp's default
 * multi-thread mode busy-polls in two threads, which took 1.3 of this 2-core machine's cores; the server then
 * competed with the load generator for CPU, and the score measured the scheduler more than the server.
 */
const CLIENT_CPU = "0";
const SERVER_CPU = "1";

interface Step {
  rate: number;
  sent: number;
  acked: number;
  dropPct: number;
  /** Datagrams the kernel dropped because a socket's receive buffer was full, on the server / perfdhcp side. */
  serverRcvbuf: number;
  clientRcvbuf: number;
  /** CPU time (user + system) the server's processes spent per 1,000 DORA exchanges completed. */
  cpuMsPerK: number;
}

const pidsIn = (ns: Netns) =>
  spawnSync("ip", ["netns", "pids", ns.name], { encoding: "utf8" }).stdout.split(/\s+/).filter(Boolean);

/** The PostgreSQL cluster of the run (--pg / --kindling-pg) and the database of the step running now. */
let postgres: TestPostgres | undefined;
let stepDatabase: string | undefined;

/** The postmaster and its children (backends, WAL writer, checkpointer ...). */
function postgresPids(): string[] {
  if (!postgres) return [];
  const pm = String(postgres.postmasterPid());
  try {
    return [pm, ...readFileSync(`/proc/${pm}/task/${pm}/children`, "utf8").split(/\s+/).filter(Boolean)];
  } catch {
    return [pm];
  }
}

/** CPU milliseconds (user + system) used so far by the processes in `ns` (the server and nothing else), and by
 * PostgreSQL when the step's server keeps its leases there. */
function cpuMs(nss: Netns[]): number {
  let ticks = 0;
  for (const pid of [...nss.flatMap(pidsIn), ...(stepDatabase ? postgresPids() : [])]) {
    try {
      // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
      const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // The process exited in between.
    }
  }
  return (ticks * 1000) / CLOCK_TICKS;
}
const CLOCK_TICKS = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;

const rcvbufErrors = (nss: Netns | Netns[]) =>
  [nss]
    .flat()
    .reduce(
      (n, ns) =>
        n + Number(ns.run(["nstat", "-az", "UdpRcvbufErrors"]).stdout.match(/UdpRcvbufErrors\s+(\d+)/)?.[1] ?? NaN),
      0,
    );

interface Peer {
  name: string;
  /** Keeps its leases in PostgreSQL: the step creates a database for it and `countLeases` checks it after. */
  postgres?: { countLeases(db: string): Promise<number> };
  /**
   * Starts the server in `ns` (and its second node in `ns2`, for a two-node peer); returns a stop function.
   * perfdhcp then broadcasts from a bridge both nodes hang off, and takes the first OFFER of each DISCOVER.
   */
  start(ns: Netns, lab: Lab, dir: string, ns2?: Netns): Promise<() => Promise<void>>;
  nodes?: 2;
}

async function countRows(db: string, sql: string): Promise<number> {
  const pg = (await import("pg")).default;
  const client = new pg.Client({ connectionString: postgres!.url(db) });
  await client.connect();
  try {
    return Number((await client.query(sql)).rows[0].n);
  } catch (err) {
    // No such table: the server never created its schema there.
    if ((err as { code?: string }).code === "42P01") return 0;
    throw err;
  } finally {
    await client.end();
  }
}

function keaConfig(dir: string, leaseDatabase: Record<string, unknown>, multiThreading?: object): string {
  const conf = join(dir, "kea.json");
  writeFileSync(
    conf,
    JSON.stringify({
      Dhcp4: {
        "interfaces-config": { interfaces: ["k0"], "dhcp-socket-type": "udp" },
        "lease-database": leaseDatabase,
        "valid-lifetime": 3600,
        ...(multiThreading ? { "multi-threading": multiThreading } : {}),
        subnet4: [
          {
            id: 1,
            subnet: CIDR,
            pools: [{ pool: `${POOL.start} - ${POOL.end}` }],
            "option-data": [{ name: "routers", data: SERVER }],
          },
        ],
        loggers: [{ name: "kea-dhcp4", severity: "WARN", output_options: [{ output: "stderr" }] }],
      },
    }),
  );
  return conf;
}

async function startKea(ns: Netns, lab: Lab, dir: string, conf: string): Promise<() => Promise<void>> {
  const p = lab.adopt(ns.spawn(["env", `KEA_PIDFILE_DIR=${dir}`, `KEA_LOCKFILE_DIR=${dir}`, "kea-dhcp4", "-c", conf]));
  await until("kea listening", () => ns.run(["ss", "-ulnp"], { allowFail: true }).stdout.includes("kea-dhcp4"));
  return async () => {
    p.kill("SIGTERM");
    await new Promise((r) => p.once("exit", r));
  };
}

function startKeaPg(ns: Netns, lab: Lab, dir: string, multiThreading?: object): Promise<() => Promise<void>> {
  const init = spawnSync(
    "kea-admin",
    ["db-init", "pgsql", "-u", "postgres", "-n", stepDatabase!, "-h", postgres!.socketDir],
    {
      encoding: "utf8",
      timeout: 60_000,
    },
  );
  if (init.status !== 0) throw new Error(`kea-admin db-init pgsql failed:\n${init.stdout}${init.stderr}`);
  // libpq takes a directory as host: the unix socket, reachable from inside the namespace.
  const db = { type: "postgresql", name: stepDatabase, host: postgres!.socketDir, user: "postgres" };
  return startKea(ns, lab, dir, keaConfig(dir, db, multiThreading));
}

const kindlingConfig = { mode: "full", subnets: [{ cidr: CIDR, ranges: [POOL], router: SERVER, leaseSeconds: 3600 }] };

const peers: Peer[] = [
  {
    name: "kindling",
    async start(ns, lab, dir) {
      const k = await startKindling(lab, ns, { config: kindlingConfig, advertise: SERVER, dataDir: dir });
      return () => k.stop();
    },
  },
  {
    name: "kindling-pg",
    // Counted after the step: a Kindling that silently kept its leases in SQLite fails the step loudly.
    postgres: { countLeases: (db) => countRows(db, "SELECT count(*) AS n FROM leases") },
    async start(ns, lab, dir) {
      const args: ServerArgs & { database: string } = {
        config: kindlingConfig,
        advertise: SERVER,
        dataDir: dir,
        database: postgres!.url(stepDatabase!),
      };
      const k = await startKindling(lab, ns, args);
      return () => k.stop();
    },
  },
  {
    name: "kindling-pg-2",
    nodes: 2,
    postgres: { countLeases: (db) => countRows(db, "SELECT count(*) AS n FROM leases") },
    async start(ns, lab, dir, ns2) {
      const database = postgres!.url(stepDatabase!);
      const node = (n: Netns, advertise: string, name: string) => {
        const dataDir = join(dir, name);
        mkdirSync(dataDir);
        return startKindling(lab, n, { config: kindlingConfig, advertise, dataDir, database });
      };
      const nodes = await Promise.all([node(ns, SERVER, "a"), node(ns2!, SERVER2, "b")]);
      return async () => {
        await Promise.all(nodes.map((k) => k.stop()));
      };
    },
  },
  {
    name: "dnsmasq",
    async start(ns, lab, dir) {
      const leases = join(dir, "dnsmasq.leases");
      writeFileSync(leases, "");
      const p = lab.adopt(
        ns.spawn([
          "dnsmasq",
          "--keep-in-foreground",
          "--conf-file=/dev/null",
          "--port=0",
          "--interface=k0",
          "--bind-interfaces",
          "--no-ping",
          `--dhcp-range=${POOL.start},${POOL.end},${NETMASK},1h`,
          "--dhcp-lease-max=100000",
          `--dhcp-leasefile=${leases}`,
          "--pid-file=",
          "--user=root",
        ]),
      );
      await until("dnsmasq listening", () => ns.run(["ss", "-ulnp"], { allowFail: true }).stdout.includes("dnsmasq"));
      return async () => {
        p.kill("SIGTERM");
        await new Promise((r) => p.once("exit", r));
      };
    },
  },
  {
    name: "kea",
    start: (ns, lab, dir) =>
      startKea(
        ns,
        lab,
        dir,
        keaConfig(dir, { type: "memfile", persist: true, name: join(dir, "kea-leases4.csv"), "lfc-interval": 0 }),
      ),
  },
  {
    name: "kea-pg",
    postgres: { countLeases: (db) => countRows(db, "SELECT count(*) AS n FROM lease4") },
    start: (ns, lab, dir) => startKeaPg(ns, lab, dir),
  },
  {
    // kea-pg keeps Kea 2.2's defaults; here its multi-threading is switched on explicitly, since with a
    // database each lease waits for a round trip and a commit, which threads overlap (4 threads, queue 64).
    name: "kea-pg-mt",
    postgres: { countLeases: (db) => countRows(db, "SELECT count(*) AS n FROM lease4") },
    start: (ns, lab, dir) =>
      startKeaPg(ns, lab, dir, { "enable-multi-threading": true, "thread-pool-size": 4, "packet-queue-size": 64 }),
  },
];

/** `to`: perfdhcp's local side and target: the one server by address, or both nodes by broadcast from the bridge. */
function perfdhcp(ns: Netns, srv: Netns[], rate: number, step: number, to: [string, string]): Step {
  const before = [rcvbufErrors(srv), rcvbufErrors(ns)];
  const cpuBefore = cpuMs(srv);
  const n = rate * SECONDS;
  // A distinct MAC base per step, so every step's clients are new to the server.
  const base = `mac=02:${step.toString(16).padStart(2, "0")}:00:00:00:00`;
  const r = ns.run(
    [
      "taskset",
      "-c",
      CLIENT_CPU,
      "perfdhcp",
      "-g",
      "single",
      "-4",
      "-l",
      to[0],
      "-r",
      String(rate),
      "-R",
      String(n),
      "-n",
      String(n),
      "-p",
      String(SECONDS + 5),
      "-b",
      base,
      "-W",
      "1500000",
      to[1],
    ],
    {
      allowFail: true,
      timeoutMs: (SECONDS + 30) * 1000,
    },
  );
  const sent = [...r.stdout.matchAll(/sent packets: (\d+)/g)].map((m) => Number(m[1]));
  const recv = [...r.stdout.matchAll(/received packets: (\d+)/g)].map((m) => Number(m[1]));
  if (sent.length < 2) throw new Error(`perfdhcp output not understood:\n${r.stdout}${r.stderr}`);
  const acked = recv[1] ?? 0;
  const cpu = cpuMs(srv) - cpuBefore;
  return {
    rate,
    sent: sent[0]!,
    acked,
    dropPct: (100 * (sent[0]! - acked)) / sent[0]!,
    serverRcvbuf: rcvbufErrors(srv) - before[0]!,
    clientRcvbuf: rcvbufErrors(ns) - before[1]!,
    cpuMsPerK: acked ? (1000 * cpu) / acked : NaN,
  };
}

async function step(peer: Peer, rate: number, i: number): Promise<Step> {
  const lab = new Lab("kdb");
  const dir = mkdtempSync(join(tmpdir(), `kindling-bench-${peer.name}-`));
  if (peer.postgres) stepDatabase = await postgres!.createDatabase(peer.name);
  try {
    const srv = lab.ns("s");
    const cli = lab.ns("c");
    const servers = [srv];
    let to: [string, string] = [CLIENT, SERVER];
    if (peer.nodes === 2) {
      const srv2 = lab.ns("t");
      servers.push(srv2);
      cli.ip("link", "add", "br0", "type", "bridge");
      lab.link(srv, "k0", `${SERVER}/10`, cli, "p0", undefined);
      lab.link(srv2, "k0", `${SERVER2}/10`, cli, "p1", undefined);
      for (const port of ["p0", "p1"]) cli.ip("link", "set", port, "master", "br0");
      cli.ip("addr", "add", `${CLIENT}/10`, "dev", "br0");
      cli.ip("link", "set", "br0", "up");
      cli.ip("route", "add", "default", "dev", "br0");
      to = ["br0", "all"];
    } else lab.link(srv, "k0", `${SERVER}/10`, cli, "eth0", `${CLIENT}/10`);
    const stop = await peer.start(srv, lab, dir, servers[1]);
    // Same warm-up for every server: measure only once a handful of exchanges complete.
    await until(
      `${peer.name} answering`,
      () =>
        cli.run(
          [
            "perfdhcp",
            "-4",
            "-l",
            to[0],
            "-r",
            "10",
            "-R",
            "10",
            "-n",
            "10",
            "-b",
            "mac=02:ff:00:00:00:00",
            "-W",
            "500000",
            to[1],
          ],
          { allowFail: true, timeoutMs: 20_000 },
        ).status === 0 || undefined,
      30_000,
    );
    for (const pid of servers.flatMap(pidsIn)) spawnSync("taskset", ["-a", "-cp", SERVER_CPU, pid]);
    const s = perfdhcp(cli, servers, rate, i + 1, to);
    await stop();
    if (peer.postgres) {
      const rows = await peer.postgres.countLeases(stepDatabase!);
      // Warm-up leases are in there too; every lease ACKed in the step must be.
      if (rows < s.acked)
        throw new Error(
          `${peer.name}: ${s.acked} leases ACKed but ${rows} in PostgreSQL` +
            (peer.name === "kindling-pg" ? " (does test/dhcp/run-server.ts pass `database` to the store yet?)" : ""),
        );
    }
    process.stderr.write(
      `${peer.name.padEnd(9)} rate ${String(rate).padStart(5)}/s  DORA ${s.acked}/${s.sent}  drops ${s.dropPct.toFixed(2)} %  server CPU ${s.cpuMsPerK.toFixed(0)} ms/1000 DORA  rcvbuf overflows: server ${s.serverRcvbuf}, perfdhcp ${s.clientRcvbuf}\n`,
    );
    return s;
  } finally {
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
    if (stepDatabase) await postgres!.dropDatabase(stepDatabase);
    stepDatabase = undefined;
  }
}

/**
 * Rates rise for all servers in lock-step (each rate runs every server back to back), so load from other
 * processes on the machine hits them alike. A rate fails when two tries in a row lose 1 % or more; a server
 * is out after two failed rates in a row.
 */
async function measureAll(selected: Peer[]): Promise<Record<string, number>> {
  const best: Record<string, number> = Object.fromEntries(selected.map((p) => [p.name, 0]));
  const misses: Record<string, number> = Object.fromEntries(selected.map((p) => [p.name, 0]));
  for (const [i, rate] of RATES.entries()) {
    const active = selected.filter((p) => misses[p.name]! < 2);
    if (active.length === 0) break;
    for (const peer of active) {
      // One retry, with new clients: a single stall of this shared machine should not end a server's run.
      let s = await step(peer, rate, 2 * i);
      if (s.dropPct >= 1) s = await step(peer, rate, 2 * i + 1);
      if (s.dropPct < 1) (best[peer.name] = rate), (misses[peer.name] = 0);
      else misses[peer.name]!++;
    }
  }
  return best;
}

const haveKea = spawnSync("sh", ["-c", "command -v kea-dhcp4"]).status === 0 && existsSync("/usr/sbin/kea-dhcp4");
const isKea = (name: string) => name.startsWith("kea");
if (ONLY.some(isKea) && !haveKea)
  process.stderr.write("kea-dhcp4 not installed (apt-get install kea-dhcp4-server): no Kea column\n");
const selected = peers.filter((p) => ONLY.includes(p.name) && (!isKea(p.name) || haveKea));
if (selected.some((p) => p.postgres)) {
  postgres = startPostgres({ durable: true });
  // Interrupted runs still stop the cluster (its exit hook runs on process.exit, not on a signal's default).
  for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => process.exit(130));
  // Backends are forked from the postmaster later and inherit its CPU; its helpers already run.
  for (const pid of postgresPids()) spawnSync("taskset", ["-a", "-cp", SERVER_CPU, pid]);
}
let results: Record<string, number>;
try {
  results = await measureAll(selected);
} finally {
  postgres?.stop();
}
console.log(`\nleases/s sustained with < 1 % failed DORA (${SECONDS} s per step, leases persisted by each server):`);
for (const [name, best] of Object.entries(results))
  console.log(`  ${name.padEnd(11)} ${best >= RATES.at(-1)! ? `>= ${best}` : best}`);
const ratio = (a: string, b: string) => {
  if (results[a] && results[b]) console.log(`  ratio ${a}/${b}: ${(results[a] / results[b]).toFixed(2)}`);
};
ratio("kindling", "dnsmasq");
ratio("kindling", "kea");
ratio("kindling-pg", "kea-pg");
ratio("kindling-pg", "kea-pg-mt");
// What moving the leases into PostgreSQL costs each server.
ratio("kea-pg", "kea");
ratio("kea-pg-mt", "kea");
ratio("kindling-pg", "kindling");
ratio("kindling-pg-2", "kea-pg");
ratio("kindling-pg-2", "kea-pg-mt");
ratio("kindling-pg-2", "kindling-pg");
