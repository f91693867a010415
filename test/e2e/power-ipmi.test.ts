import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { expect, test } from "vitest";
import { guestArgs } from "../power/rig/guest.ts";
import { ipmiGuestArgs, startIpmiSim } from "../power/rig/ipmi-sim.ts";
import { SerialFile } from "../power/rig/serial-file.ts";
import { until } from "../power/rig/until.ts";
import { BOOT_TIMEOUT_MS, putProfile, runScenario } from "./rig/scenario.ts";

const USER = "kindling";
const PASSWORD = "ipmi-e2e-Secret-7";

// An installed machine that boots its disk is reinstalled with one API call: Kindling sets the next boot to the
// network through the BMC (OpenIPMI's ipmi_sim over RMCP+) and power-cycles it; ipmi_sim powers the QEMU guest
// off over the VM serial protocol (ipmi-bmc-extern) and starts it again; the guest PXE-boots through Kindling,
// installs and reports. The test only watches.
test("ipmi: reinstall --power-cycle through the API restarts an installed machine into the installer", async () => {
  await runScenario("power-ipmi", { subnet: 18, dhcp: "full" }, async ({ ns, dir, kindling: k }) => {
    const mac = "52:54:00:e2:18:01";
    const disk = join(dir, "disk.raw");
    execFileSync("truncate", ["-s", "64M", disk]);
    const serial = new SerialFile(join(dir, "serial.log"));
    const sim = await startIpmiSim({
      ns,
      dir,
      username: USER,
      password: PASSWORD,
      guest: (vmPort) => guestArgs({ ns, mac, disk, serialLog: serial.path, extra: ipmiGuestArgs(vmPort) }),
    });
    putProfile(k, "e2e", ["kindling.e2e.report={{ urls.report }}"]);
    k.call("POST", "/machines", { mac, profile: "e2e" });
    const bmc = k.call("PUT", `/machines/${mac}/bmc`, {
      driver: "ipmi",
      address: "127.0.0.1",
      port: sim.lanPort,
      // ipmi_sim offers suite 3 and does not answer ipmitool's question about its suites.
      cipherSuite: 3,
      username: USER,
      password: PASSWORD,
    }) as Record<string, unknown>;
    expect(bmc.password).toBe("set");
    expect(JSON.stringify(bmc)).not.toContain(PASSWORD);

    // First install, powered on through the API.
    expect(k.call("POST", `/machines/${mac}/power`, { action: "status" })).toMatchObject({ ok: true, state: "off" });
    expect(k.call("POST", `/machines/${mac}/power`, { action: "on" })).toMatchObject({ ok: true });
    await serial.waitFor(/kindling-e2e: reported install-done/, BOOT_TIMEOUT_MS);
    await waitState(k, mac, "installed");
    // The initramfs powers off after reporting: ipmi_sim sees its guest go.
    await until(() => /Chassis Power is off/.test(sim.ipmitool(["chassis", "power", "status"])), 60_000);

    // Powered on again, it gets no boot file and goes to its (empty) disk: an installed machine booting from disk.
    const before = serial.length;
    k.call("POST", `/machines/${mac}/power`, { action: "on" });
    await serial.waitFor(/Booting from Hard Disk/, BOOT_TIMEOUT_MS, before);
    const installsBefore = k.events(mac).filter((e) => e.kind === "lifecycle.install-done").length;

    // The one call.
    const cycleAt = serial.length;
    const r = k.api("POST", `/machines/${mac}/power`, { action: "cycle", reinstall: true });
    expect(r.status, r.text).toBe(200);
    const out = r.body as { machine: { state: string }; steps: { action: string; ok: boolean; answer: string }[] };
    expect(out.machine.state).toBe("ready");
    expect(out.steps.map((s) => s.action)).toEqual(["pxe-once", "status", "cycle"]);
    // ipmi_sim takes boot options only from a chassis_control program, which would replace its VM power path:
    // here it refuses them (test/power/ipmi.test.ts shows the override reaching one that takes them); the
    // guest's boot order starts with the network, so the cycle alone brings it to Kindling.
    expect(out.steps[0]).toMatchObject({ action: "pxe-once", ok: false, errorKind: "refused" });
    expect(out.steps.at(-1)).toMatchObject({ ok: true });

    // SeaBIOS starts again (a new QEMU process, started by ipmi_sim), iPXE gets a script, the installer reports.
    await serial.waitFor(/SeaBIOS/, 120_000, cycleAt);
    await serial.waitFor(/kindling-e2e: reported install-done/, BOOT_TIMEOUT_MS, cycleAt);
    await waitState(k, mac, "installed");

    const events = k.events(mac);
    const kinds = events.map((e) => e.kind);
    const reinstallAt = kinds.lastIndexOf("lifecycle.reinstall");
    const after = events.slice(reinstallAt);
    expect(after.map((e) => e.kind)).toEqual(
      expect.arrayContaining([
        "power.pxe-once",
        "power.status",
        "power.cycle",
        "ipxe.request",
        "lifecycle.install-done",
      ]),
    );
    expect(after.find((e) => e.kind === "power.cycle")?.detail).toMatchObject({ ok: true, driver: "ipmi" });
    expect(after.some((e) => e.kind === "ipxe.request" && e.detail.outcome === "boot")).toBe(true);
    expect(events.filter((e) => e.kind === "lifecycle.install-done")).toHaveLength(installsBefore + 1);
    // No event, and no line of Kindling's log, carries the password.
    expect(JSON.stringify(events)).not.toContain(PASSWORD);
    expect(execFileSync("cat", [k.logFile], { encoding: "utf8" })).not.toContain(PASSWORD);
  });
});

async function waitState(k: { call(m: string, p: string): unknown }, mac: string, state: string): Promise<void> {
  await until(() => (k.call("GET", `/machines/${mac}`) as { state: string }).state === state, 60_000);
}
