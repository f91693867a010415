import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type Running, startTestKindling, TEST_TOKEN } from "../helpers/kindling.ts";
import { RedfishSim, VirtualChassis } from "./rig/redfish-sim.ts";
import { scratchDir } from "./rig/scratch.ts";
import { selfSigned } from "./rig/tls.ts";

const run = promisify(execFile);
const BIN = join(import.meta.dirname, "..", "..", "bin", "kindling.js");
const PASSWORD = "Cli-Secret-0e55";
const MAC = "52:54:00:18:08:01";

let k: Running;
let sim: RedfishSim;
let chassis: VirtualChassis;
let port: number;
let dir: string;
let certFile: string;

async function kindling(args: string[], env: Record<string, string> = {}) {
  try {
    const r = await run(process.execPath, [BIN, "--server", k.url, "--token", TEST_TOKEN, ...args], {
      env: { ...process.env, ...env },
      timeout: 30_000,
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

beforeAll(async () => {
  dir = scratchDir("kindling-power-cli-");
  const tls = selfSigned(dir);
  certFile = tls.certFile;
  chassis = new VirtualChassis();
  sim = new RedfishSim({ username: "admin", password: PASSWORD, cert: tls.cert, key: tls.key, chassis });
  port = await sim.listen();
  k = await startTestKindling({ power: { pollSeconds: 0 } });
  await k.api("/profiles/cli-live", {
    method: "PUT",
    json: {
      boot: { kernel: "/assets/k", initrd: [], args: [] },
      ignition: { json: '{"ignition":{"version":"3.4.0"}}' },
    },
  });
  await k.api("/machines", { method: "POST", json: { mac: MAC, profile: "cli-live" } });
});
afterAll(async () => {
  await k?.stop();
  await sim?.close();
});

describe("kindling machines power / bmc / reinstall --power-cycle", () => {
  test("bmc set takes the password from a file or the environment, never a flag; show never prints it", async () => {
    const noPassword = await kindling([
      "machines",
      "bmc",
      "set",
      MAC,
      "--driver",
      "redfish",
      "--address",
      "127.0.0.1",
      "--username",
      "admin",
    ]);
    expect(noPassword.code).not.toBe(0);
    expect(noPassword.stderr).toMatch(/--password-file FILE .* or KINDLING_BMC_PASSWORD/);
    const file = join(dir, "pw");
    writeFileSync(file, `${PASSWORD}\n`, { mode: 0o600 });
    // The Redfish simulator's BMC, named the same way every time; only where the password comes from differs.
    const setBmc = (...extra: string[]) => [
      ...["machines", "bmc", "set", MAC, "--driver", "redfish", "--address", "127.0.0.1", "--port", String(port)],
      ...["--username", "admin", "--ca-cert", certFile, ...extra],
    ];
    const set = await kindling(setBmc("--password-file", file));
    expect(set.stdout).toBe(`${MAC}: BMC redfish 127.0.0.1:${port} (password set)\n`);
    const byEnv = await kindling(setBmc(), { KINDLING_BMC_PASSWORD: PASSWORD });
    expect(byEnv.code).toBe(0);
    const show = await kindling(["machines", "bmc", "show", MAC]);
    expect(show.stdout).toMatch(/password\s+set/);
    expect(show.stdout + set.stdout + byEnv.stdout).not.toContain(PASSWORD);
  });

  test("power actions print the BMC's answer; a bad action is refused before any request", async () => {
    chassis.state = "Off";
    expect((await kindling(["machines", "power", MAC, "status"])).stdout).toBe(`${MAC} status: off (PowerState Off)\n`);
    expect((await kindling(["machines", "power", MAC, "on"])).stdout).toBe(`${MAC} on: Reset On: HTTP 204\n`);
    const other = "52:54:00:18:08:02";
    await k.api("/machines", { method: "POST", json: { mac: other } });
    await k.api(`/machines/${other}/bmc`, {
      method: "PUT",
      json: { driver: "redfish", address: "127.0.0.1", port, username: "admin", password: "wrong", insecure: true },
    });
    const refused = await kindling(["machines", "power", other, "on"]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(new RegExp(`502 ${other} on: Redfish BMC 127.0.0.1 refused the credentials`));
    const bad = await kindling(["machines", "power", MAC, "explode"]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/action must be one of status, on, off, soft-off, cycle, reset, pxe-once/);
  });

  test("reinstall --power-cycle: ready, override, cycle, each step listed", async () => {
    chassis.state = "On";
    const r = await kindling(["machines", "reinstall", MAC, "--power-cycle"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^${MAC} is ready; power:`));
    expect(r.stdout).toMatch(/pxe-once\s+yes\s+Boot override Pxe\/Once/);
    expect(r.stdout).toMatch(/cycle\s+yes\s+Reset PowerCycle: HTTP 204/);
    expect(sim.boot).toMatchObject({ BootSourceOverrideEnabled: "Disabled" }); // consumed by the cycle
    expect(sim.bootsUsed.at(-1)).toMatchObject({ BootSourceOverrideTarget: "Pxe", BootSourceOverrideEnabled: "Once" });
  });
});
