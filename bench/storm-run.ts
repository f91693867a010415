/**
 * Driver for bench/storm.sh: a rack of simulated machines powered on at once, booting through Kindling (full
 * DHCP mode) and through dnsmasq + nginx, in the same run, inside network namespaces this process creates and
 * removes. See docs/storm.md for what a machine does and how to read the table.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { prng } from "../test/helpers/prng.ts";
import { API_TOKEN, HTTP_PORT, PROFILE, type RunningServer, startKindling } from "./storm/kindling.ts";
import { bytesOf, type Options, parseOptions } from "./storm/options.ts";
import { startPeer } from "./storm/peer.ts";
import type { FleetPlan, FleetResult, MachineSpec } from "./storm/plan.ts";
import { profileSummary } from "./storm/profile.ts";
import { stageRelease } from "./storm/release.ts";
import { formatRound, type RunSummary, type Server, summarize } from "./storm/report.ts";
import { createTopology, SERVER_IP, type Topology } from "./storm/topology.ts";
import { type Usage, UsageSampler } from "./storm/usage.ts";

const FLEET = resolve(import.meta.dirname, "storm/fleet.ts");
/** How long past its deadline the fleet may take to register machines, wind down and write its results. */
const FLEET_GRACE_MS = 10 * 60_000;

/** Distinct locally administered MACs, alternating BIOS and UEFI, power-on times uniform over the window. */
function fleetOf(o: Options): MachineSpec[] {
  const rnd = prng(o.seed);
  return Array.from({ length: o.machines }, (_, i) => {
    const hex = (n: number) => (n & 255).toString(16).padStart(2, "0");
    return {
      mac: `02:53:00:${hex(i >> 16)}:${hex(i >> 8)}:${hex(i)}`,
      uuid: `5354524d-0000-4000-8000-${i.toString(16).padStart(12, "0")}`,
      firmware: i % 2 === 0 ? "bios" : "uefi",
      arrivalMs: Math.round(rnd() * o.window * 1000),
    };
  });
}

/** Runs the fleet in the client namespace; samples the server namespace from the fleet's START to its DONE. */
async function runFleet(t: Topology, plan: FleetPlan, planFile: string, label: string): Promise<Usage> {
  writeFileSync(planFile, JSON.stringify(plan));
  const child = t.lab.adopt(t.client.spawn([...t.fleetCpu, process.execPath, "--import", "tsx", FLEET, planFile]));
  const sampler = new UsageSampler(t.server.name);
  let usage: Usage | undefined;
  let stderr = "";
  child.stderr!.on("data", (d) => {
    stderr += String(d);
  });
  createInterface({ input: child.stdout! }).on("line", (line) => {
    if (line === "START") {
      sampler.start();
      console.log(`${label}: storm started`);
    } else if (line.startsWith("DONE")) {
      usage = sampler.stop();
      console.log(`${label}: ${line}`);
    } else console.log(`${label}: ${line}`);
  });
  // The fleet stops itself at the deadline; this is the bound if it ever does not (registration included).
  const guard = setTimeout(() => child.kill("SIGKILL"), plan.deadlineMs + FLEET_GRACE_MS);
  const code = await new Promise<number | null>((r) => child.once("exit", r));
  clearTimeout(guard);
  if (code !== 0 || !usage) throw new Error(`fleet for ${label} exited with ${code}: ${stderr.slice(-4000)}`);
  return usage;
}

async function runOne(
  t: Topology,
  o: Options,
  server: Server,
  round: number,
  work: string,
  release: Awaited<ReturnType<typeof stageRelease>>,
  machines: MachineSpec[],
): Promise<RunSummary> {
  const dir = join(work, `round${round}-${server}`);
  mkdirSync(dir, { recursive: true });
  const label = `round ${round} ${server}`;
  const servers: RunningServer[] = [];
  const profileDir = o.cpuProf && server === "kindling" ? join(dir, "cpu-profile") : undefined;
  try {
    if (server === "kindling") servers.push(await startKindling(t, dir, release, profileDir));
    else {
      const p = await startPeer(t, dir, release, machines, o.nginxWorkers, o.tftpMax || o.machines);
      servers.push(p.nginx, p.dnsmasq);
    }
    const plan: FleetPlan = {
      server: SERVER_IP,
      machines,
      kernelBytes: bytesOf(o.kernelMb),
      initrdBytes: bytesOf(o.initrdMb),
      ...(server === "kindling"
        ? { register: { url: `http://${SERVER_IP}:${HTTP_PORT}`, token: API_TOKEN, profile: PROFILE } }
        : {}),
      deadlineMs: o.maxSeconds * 1000,
      resultFile: join(dir, "fleet-result.json"),
    };
    const usage = await runFleet(t, plan, join(dir, "fleet-plan.json"), label);
    for (const s of servers.splice(0)) await s.stop();
    if (profileDir) console.log(profileSummary(profileDir).join("\n"));
    const result = JSON.parse(readFileSync(plan.resultFile, "utf8")) as FleetResult;
    if (plan.register)
      console.log(
        `${label}: registering the machines took ${(result.registerMs / 1000).toFixed(1)} s (before the clock)`,
      );
    return summarize(server, round, result, usage);
  } finally {
    for (const s of servers) await s.stop();
  }
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  const machines = fleetOf(o);
  const perServer = (machines.length * (bytesOf(o.kernelMb) + bytesOf(o.initrdMb))) / 1e9;
  console.log(
    `storm: ${o.machines} machines (half BIOS, half UEFI) over ${o.window} s, kernel ${o.kernelMb} MB + initrd ${o.initrdMb} MB ` +
      `(${perServer.toFixed(1)} GB over HTTP per server), ${o.rounds} round(s) of ${o.only.join(" + ")}; ` +
      `${cpus().length} cores, load ${loadavg()
        .map((l) => l.toFixed(1))
        .join(" ")}`,
  );
  const work = mkdtempSync(join(tmpdir(), "kindling-storm-"));
  let topology: Topology | undefined;
  let cleaned = false;
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    await topology?.lab.destroy();
    if (!o.keep) rmSync(work, { recursive: true, force: true });
  };
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const)
    process.once(sig, () => void cleanup().finally(() => process.exit(130)));
  try {
    const t0 = Date.now();
    const release = await stageRelease(work, { kernel: bytesOf(o.kernelMb), initrd: bytesOf(o.initrdMb) });
    console.log(`release staged and imported in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    topology = createTopology(o.machines, o.pin);
    const rounds: string[] = [];
    for (let round = 1; round <= o.rounds; round++) {
      const order = round % 2 === 1 ? o.only : [...o.only].reverse();
      const got: Partial<Record<Server, RunSummary>> = {};
      for (const server of order) got[server] = await runOne(topology, o, server, round, work, release, machines);
      const text = formatRound(got.kindling, got.peer);
      rounds.push(`round ${round} (${order.join(" first, then ")}):\n${text}`);
      console.log(`\n${rounds.at(-1)}\n`);
      writeFileSync(join(work, `round${round}-summary.json`), JSON.stringify(got, null, 2));
    }
    const load = readFileSync("/proc/loadavg", "utf8").trim();
    console.log(
      `${o.rounds > 1 ? `\nall rounds:\n${rounds.join("\n\n")}\n\n` : ""}ratio = kindling / peer (dnsmasq ${o.nginxWorkers > 1 ? `+ nginx ${o.nginxWorkers} workers` : "+ nginx 1 worker"}); ` +
        `load at the end: ${load}${o.keep ? `; results in ${work}` : ""}`,
    );
  } finally {
    await cleanup();
  }
}

await main();
