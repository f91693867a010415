import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type Running, startTestKindling } from "../helpers/kindling.ts";
import { RedfishSim, VirtualChassis } from "./rig/redfish-sim.ts";
import { scratchDir } from "./rig/scratch.ts";
import { selfSigned } from "./rig/tls.ts";

const run = promisify(execFile);
const USER = "operator";
const PASSWORD = "Redfish-Sim-Pw-5a";

let k: Running;
let sim: RedfishSim;
let chassis: VirtualChassis;
let port: number;
let cert: string;
let otherCert: string;

beforeAll(async () => {
  const dir = scratchDir("kindling-redfish-");
  const tls = selfSigned(dir);
  cert = tls.cert;
  otherCert = selfSigned(dir, "other").cert;
  chassis = new VirtualChassis();
  sim = new RedfishSim({ username: USER, password: PASSWORD, cert: tls.cert, key: tls.key, chassis });
  port = await sim.listen();
  k = await startTestKindling({ power: { pollSeconds: 0, timeoutSeconds: 10 } });
});
afterAll(async () => {
  await k.stop();
  await sim.close();
});

let n = 0;
async function machineWithBmc(bmc: Record<string, unknown>, machine: Record<string, unknown> = {}): Promise<string> {
  const mac = `52:54:00:18:03:${(n++).toString(16).padStart(2, "0")}`;
  expect((await k.api("/machines", { method: "POST", json: { mac, ...machine } })).status).toBe(201);
  const r = await k.api(`/machines/${mac}/bmc`, {
    method: "PUT",
    json: { driver: "redfish", address: "127.0.0.1", port, username: USER, password: PASSWORD, ...bmc },
  });
  expect(r.status).toBe(200);
  return mac;
}
const act = async (mac: string, action: string) =>
  (await k.api(`/machines/${mac}/power`, { method: "POST", json: { action } })).json();

describe("Redfish driver against the simulator", () => {
  test("session auth: one session, reused; every action through ComputerSystem.Reset", async () => {
    const mac = await machineWithBmc({ caCert: cert });
    const logins = () => sim.log.filter((l) => l.method === "POST" && l.path.endsWith("/Sessions")).length;
    const before = logins();
    chassis.state = "Off";
    expect(await act(mac, "status")).toMatchObject({ ok: true, state: "off", answer: "PowerState Off" });
    expect(await act(mac, "on")).toMatchObject({ ok: true, answer: "Reset On: HTTP 204" });
    expect(await act(mac, "status")).toMatchObject({ ok: true, state: "on" });
    expect(await act(mac, "cycle")).toMatchObject({ ok: true, answer: "Reset PowerCycle: HTTP 204" });
    expect(await act(mac, "reset")).toMatchObject({ ok: true, answer: "Reset ForceRestart: HTTP 204" });
    expect(await act(mac, "soft-off")).toMatchObject({ ok: true, answer: "Reset GracefulShutdown: HTTP 204" });
    expect(await act(mac, "off")).toMatchObject({ ok: true, answer: "Reset ForceOff: HTTP 204" });
    expect(chassis.resets.slice(-5)).toEqual(["On", "PowerCycle", "ForceRestart", "GracefulShutdown", "ForceOff"]);
    expect(logins() - before).toBe(1);
    expect(sim.log.filter((l) => l.auth === "basic")).toHaveLength(0);
  });

  test("basic auth on every request", async () => {
    const mac = await machineWithBmc({ caCert: cert, auth: "basic" });
    const from = sim.log.length;
    expect(await act(mac, "status")).toMatchObject({ ok: true });
    const mine = sim.log.slice(from).filter((l) => l.path !== "/redfish/v1");
    expect(mine.length).toBeGreaterThan(0);
    expect(mine.every((l) => l.auth === "basic")).toBe(true);
  });

  test("TLS is verified: an unknown certificate fails, a pinned CA or the insecure flag passes", async () => {
    const unverified = await machineWithBmc({});
    const r = await act(unverified, "status");
    expect(r).toMatchObject({ ok: false, errorKind: "unreachable" });
    expect(r.answer).toMatch(/self[- ]signed|certificate/i);
    const wrongCa = await machineWithBmc({ caCert: otherCert });
    expect(await act(wrongCa, "status")).toMatchObject({ ok: false, errorKind: "unreachable" });
    const insecure = await machineWithBmc({ insecure: true });
    expect(await act(insecure, "status")).toMatchObject({ ok: true });
  });

  test("wrong credentials and an unknown system id are clear errors", async () => {
    const bad = await machineWithBmc({ caCert: cert, password: "nope" });
    const r = await act(bad, "status");
    expect(r).toMatchObject({ ok: false, errorKind: "auth" });
    expect(r.answer).toMatch(/refused the credentials/);
    const noSystem = await machineWithBmc({ caCert: cert, systemId: "7" });
    expect((await act(noSystem, "status")).answer).toMatch(
      /no system 7 on this BMC \(it has \/redfish\/v1\/Systems\/1\)/,
    );
  });

  test("pxe-once: Boot override Pxe/Once with the mode the machine's record tells (UEFI for arm64)", async () => {
    const uefi = await machineWithBmc({ caCert: cert }, { arch: "arm64" });
    expect(await act(uefi, "pxe-once")).toMatchObject({ ok: true });
    expect(sim.boot).toEqual({
      BootSourceOverrideTarget: "Pxe",
      BootSourceOverrideEnabled: "Once",
      BootSourceOverrideMode: "UEFI",
    });
    // Once means once: the next power-on consumes it.
    chassis.state = "Off";
    expect(await act(uefi, "on")).toMatchObject({ ok: true });
    expect(sim.bootsUsed.at(-1)).toMatchObject({ BootSourceOverrideTarget: "Pxe" });
    expect(sim.boot.BootSourceOverrideEnabled).toBe("Disabled");
  });

  test("reinstall with power cycle: ready, override, then on (it was off)", async () => {
    const mac = await machineWithBmc({ caCert: cert });
    await k.api("/profiles/live-e2e", {
      method: "PUT",
      json: {
        boot: { kernel: "/assets/k", initrd: [], args: [] },
        ignition: { json: '{"ignition":{"version":"3.4.0"}}' },
      },
    });
    await k.api(`/machines/${mac}`, { method: "PATCH", json: { profile: "live-e2e" } });
    chassis.state = "Off";
    const r = await k.api(`/machines/${mac}/power`, { method: "POST", json: { action: "cycle", reinstall: true } });
    expect(r.status).toBe(200);
    const out = await r.json();
    expect(out.machine.state).toBe("ready");
    expect(out.steps.map((s: { action: string }) => s.action)).toEqual(["pxe-once", "status", "on"]);
    const kinds = (await (await k.api(`/events?mac=${mac}`)).json()).map((e: { kind: string }) => e.kind);
    expect(kinds.slice(0, 4)).toEqual(["power.on", "power.status", "power.pxe-once", "lifecycle.reinstall"]);
  });
});

describe("the simulator is a faithful Redfish service: Debian's redfishtool drives it", () => {
  const tool = (...args: string[]) =>
    run(
      "redfishtool",
      ["-r", `127.0.0.1:${port}`, "-u", USER, "-p", PASSWORD, "-S", "Always", "-A", "Session", ...args],
      {
        timeout: 30_000,
      },
    ).then((r) => r.stdout);

  test("Systems get, reset, and a Boot PATCH", async () => {
    chassis.state = "Off";
    const sys = JSON.parse(await tool("Systems", "-I", "1", "get"));
    expect(sys).toMatchObject({ Id: "1", PowerState: "Off", "@odata.type": "#ComputerSystem.v1_13_0.ComputerSystem" });
    await tool("Systems", "-I", "1", "reset", "On");
    expect(chassis.state).toBe("On");
    expect(JSON.parse(await tool("Systems", "-I", "1", "get", "-P", "PowerState"))).toEqual({ PowerState: "On" });
    await tool("Systems", "-I", "1", "setBootOverride", "Once", "Pxe");
    expect(sim.boot).toMatchObject({ BootSourceOverrideEnabled: "Once", BootSourceOverrideTarget: "Pxe" });
    const collection = JSON.parse(await tool("Systems"));
    expect(collection.Members).toEqual([{ "@odata.id": "/redfish/v1/Systems/1" }]);
  });
});
