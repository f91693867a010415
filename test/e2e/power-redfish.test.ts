import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { expect, test } from "vitest";
import { guestArgs } from "../power/rig/guest.ts";
import { SerialFile } from "../power/rig/serial-file.ts";
import { selfSigned } from "../power/rig/tls.ts";
import { until } from "../power/rig/until.ts";
import { REPO } from "./rig/paths.ts";
import { BOOT_TIMEOUT_MS, putProfile, runScenario } from "./rig/scenario.ts";

const USER = "root";
const PASSWORD = "redfish-e2e-Secret-2";
const PORT = 8443;

// The IPMI scenario again through Redfish: the test's Redfish simulator (its own process in the namespace, TLS
// with a self-signed certificate Kindling pins) drives the QEMU guest over QMP. One API call reinstalls.
test("redfish: reinstall --power-cycle through the API restarts an installed machine into the installer", async () => {
  await runScenario("power-redfish", { subnet: 19, dhcp: "full" }, async ({ ns, dir, kindling: k }) => {
    const mac = "52:54:00:e2:19:01";
    const disk = join(dir, "disk.raw");
    execFileSync("truncate", ["-s", "64M", disk]);
    const serial = new SerialFile(join(dir, "serial.log"));
    const tls = selfSigned(dir);
    const resetLog = join(dir, "resets.jsonl");
    const config = join(dir, "redfish-sim.json");
    writeFileSync(
      config,
      JSON.stringify({
        port: PORT,
        certFile: tls.certFile,
        keyFile: tls.keyFile,
        username: USER,
        password: PASSWORD,
        guest: guestArgs({
          ns,
          mac,
          disk,
          serialLog: serial.path,
          extra: ["-qmp", `unix:${join(dir, "qmp.sock")},server=on,wait=off`],
        }),
        qmp: join(dir, "qmp.sock"),
        qemuLog: join(dir, "qemu.log"),
        resetLog,
      }),
    );
    const simProc = ns.spawn(
      join(REPO, "node_modules", ".bin", "tsx"),
      [join(REPO, "test", "power", "rig", "redfish-sim-main.ts"), config],
      {
        cwd: REPO,
      },
    );
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("Redfish simulator did not start")), 60_000);
      simProc.stdout!.on("data", (c: Buffer) => {
        if (c.toString().includes("listening")) {
          clearTimeout(timer);
          resolve();
        }
      });
      simProc.once("exit", (code) => reject(new Error(`Redfish simulator exited with ${code}`)));
    });

    putProfile(k, "e2e", ["kindling.e2e.report={{ urls.report }}"]);
    k.call("POST", "/machines", { mac, profile: "e2e" });
    k.call("PUT", `/machines/${mac}/bmc`, {
      driver: "redfish",
      address: "127.0.0.1",
      port: PORT,
      username: USER,
      password: PASSWORD,
      caCert: tls.cert,
    });

    expect(k.call("POST", `/machines/${mac}/power`, { action: "status" })).toMatchObject({ ok: true, state: "off" });
    expect(k.call("POST", `/machines/${mac}/power`, { action: "on" })).toMatchObject({ ok: true });
    await serial.waitFor(/kindling-e2e: reported install-done/, BOOT_TIMEOUT_MS);
    await until(() => (k.call("GET", `/machines/${mac}`) as { state: string }).state === "installed", 60_000);
    await until(
      () => (k.call("POST", `/machines/${mac}/power`, { action: "status" }) as { state: string }).state === "off",
      60_000,
    );

    const before = serial.length;
    k.call("POST", `/machines/${mac}/power`, { action: "on" });
    await serial.waitFor(/Booting from Hard Disk/, BOOT_TIMEOUT_MS, before);

    // The one call.
    const cycleAt = serial.length;
    const r = k.api("POST", `/machines/${mac}/power`, { action: "cycle", reinstall: true });
    expect(r.status, r.text).toBe(200);
    const out = r.body as { machine: { state: string }; steps: { action: string; ok: boolean }[] };
    expect(out.machine.state).toBe("ready");
    expect(out.steps).toMatchObject([
      { action: "pxe-once", ok: true },
      { action: "status", ok: true },
      { action: "cycle", ok: true },
    ]);

    await serial.waitFor(/SeaBIOS/, 120_000, cycleAt);
    await serial.waitFor(/kindling-e2e: reported install-done/, BOOT_TIMEOUT_MS, cycleAt);
    await until(() => (k.call("GET", `/machines/${mac}`) as { state: string }).state === "installed", 60_000);

    // The BMC was asked for Pxe/Once before the cycle, and the cycle's power-on consumed it.
    const resets = readFileSync(resetLog, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(resets.at(-1)).toMatchObject({
      type: "PowerCycle",
      lastBoot: { BootSourceOverrideTarget: "Pxe", BootSourceOverrideEnabled: "Once" },
    });
    const events = k.events(mac);
    const after = events.slice(events.map((e) => e.kind).lastIndexOf("lifecycle.reinstall"));
    expect(after.map((e) => e.kind)).toEqual(
      expect.arrayContaining(["power.pxe-once", "power.cycle", "ipxe.request", "lifecycle.install-done"]),
    );
    expect(after.find((e) => e.kind === "power.cycle")?.detail).toMatchObject({ ok: true, driver: "redfish" });
    expect(JSON.stringify(events)).not.toContain(PASSWORD);
    expect(readFileSync(k.logFile, "utf8")).not.toContain(PASSWORD);
  });
});
