import { afterAll, beforeAll, expect, test } from "vitest";
import { type Running, startTestKindling } from "../helpers/kindling.ts";
import { RedfishSim, VirtualChassis } from "./rig/redfish-sim.ts";
import { scratchDir } from "./rig/scratch.ts";
import { selfSigned } from "./rig/tls.ts";

let k: Running;
let sim: RedfishSim;
let chassis: VirtualChassis;
const MACS = ["52:54:00:18:07:01", "52:54:00:18:07:02", "52:54:00:18:07:03"];

beforeAll(async () => {
  const tls = selfSigned(scratchDir("kindling-poll-tls-"));
  chassis = new VirtualChassis();
  sim = new RedfishSim({ username: "admin", password: "pw-poll", cert: tls.cert, key: tls.key, chassis });
  const port = await sim.listen();
  // One BMC per second: the rate the poller is bounded to.
  k = await startTestKindling({ power: { pollSeconds: 1, pollBatch: 1 } });
  for (const mac of MACS) {
    await k.api("/machines", { method: "POST", json: { mac } });
    await k.api(`/machines/${mac}/bmc`, {
      method: "PUT",
      json: { driver: "redfish", address: "127.0.0.1", port, username: "admin", password: "pw-poll", caCert: tls.cert },
    });
  }
});
afterAll(async () => {
  await k?.stop();
  await sim?.close();
});

const power = async (mac: string) => (await k.api(`/machines/${mac}/power`)).json();

/** Polls an async condition every 200 ms until it holds; throws after `timeoutMs`. */
async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test("the poller visits every BMC in turn at its bounded rate and records changes, not repeats", async () => {
  const started = Date.now();
  const asked = () => sim.log.filter((l) => l.method === "GET" && l.path === "/redfish/v1/Systems/1").length;
  // Every BMC gets asked: never-asked first, then the longest ago.
  for (const mac of MACS) await eventually(`${mac} polled`, async () => (await power(mac)).checkedAt !== null);
  expect(await power(MACS[0]!)).toMatchObject({ state: "off", error: null });
  // At most one status per tick (pollBatch 1, pollSeconds 1), plus the tick in flight.
  const ticks = Math.floor((Date.now() - started) / 1000) + 1;
  expect(asked()).toBeLessThanOrEqual(ticks);

  // A change made outside Kindling (someone at the rack) shows up as one power.state event per BMC.
  chassis.state = "On";
  for (const mac of MACS) await eventually(`${mac} seen on`, async () => (await power(mac)).state === "on");
  const seen = asked();
  await eventually("another round", async () => asked() >= seen + MACS.length);
  const events = await (await k.api(`/events?mac=${MACS[0]}&kind=power.state`)).json();
  expect(events.map((e: { detail: { from: string; to: string } }) => `${e.detail.from}→${e.detail.to}`)).toEqual([
    "off→on",
    "unknown→off",
  ]);
});
