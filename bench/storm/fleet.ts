/**
 * The simulated fleet, one process inside the client namespace (started by bench/storm-run.ts):
 *   ip netns exec <client-ns> node --import tsx bench/storm/fleet.ts PLAN.json
 * Registers the machines when asked (Kindling), prints `START` when the clock starts, powers each machine
 * on at its arrival time, stops whatever still runs at the deadline, writes the results and prints `DONE`.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { DhcpPort } from "./dhcp-client.ts";
import { bootMachine } from "./machine.ts";
import { type FleetPlan, FleetPlanSchema, type FleetResult, type MachineResult } from "./plan.ts";

/** Registration requests in flight at once (setup, not part of the storm). */
const REGISTER_PARALLEL = 8;

async function register(plan: FleetPlan): Promise<void> {
  const r = plan.register!;
  let next = 0;
  const worker = async () => {
    while (next < plan.machines.length) {
      const m = plan.machines[next++]!;
      const res = await fetch(`${r.url}/api/v1/machines`, {
        method: "POST",
        headers: { authorization: `Bearer ${r.token}`, "content-type": "application/json" },
        body: JSON.stringify({ mac: m.mac, profile: r.profile }),
        signal: AbortSignal.timeout(30_000),
      });
      if (res.status !== 201 && res.status !== 200)
        throw new Error(`registering ${m.mac}: ${res.status} ${await res.text()}`);
      await res.arrayBuffer();
    }
  };
  await Promise.all(Array.from({ length: REGISTER_PARALLEL }, worker));
}

const plan = FleetPlanSchema.parse(JSON.parse(readFileSync(process.argv[2]!, "utf8")));
const registerStart = performance.now();
if (plan.register) await register(plan);
const registerMs = performance.now() - registerStart;

const dhcp = await DhcpPort.open();
const stop = new AbortController();
const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const deadline = setTimeout(() => stop.abort(), plan.deadlineMs);
console.log("START");

let finished = 0;
const progress = setInterval(() => {
  const s = ((performance.now() - t0) / 1000).toFixed(0);
  console.log(`  ${s} s: ${finished}/${plan.machines.length} machines finished`);
}, 10_000);

const ctx = {
  dhcp,
  server: plan.server,
  t0,
  kernelBytes: plan.kernelBytes,
  initrdBytes: plan.initrdBytes,
  signal: stop.signal,
};
const results: MachineResult[] = await Promise.all(
  plan.machines.map(async (m) => {
    await new Promise((r) => setTimeout(r, Math.max(0, t0 + m.arrivalMs - performance.now())));
    const r = await bootMachine(m, ctx);
    finished++;
    return r;
  }),
);
clearTimeout(deadline);
clearInterval(progress);
dhcp.close();
loop.disable();
const cpu = process.cpuUsage(cpu0);

const out: FleetResult = {
  registerMs,
  fleet: {
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    loopDelayP99Ms: loop.percentile(99) / 1e6,
    loopDelayMaxMs: loop.max / 1e6,
  },
  machines: results,
};
writeFileSync(plan.resultFile, JSON.stringify(out));
console.log(`DONE stray-dhcp=${dhcp.stray}`);
