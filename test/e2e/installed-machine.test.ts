import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { expect, test } from "vitest";
import { startVm } from "./rig/firmware.ts";
import { BOOT_TIMEOUT_MS, expectBooted, putProfile, reportTime, runScenario } from "./rig/scenario.ts";

// Scenario 6: the scripted install reports started and done over the signed report URL; the next power-on
// gets an address but no boot file, and SeaBIOS moves on to the (empty) disk — no second kernel boot.
test("installed machine: after install-done a reboot gets no boot file and the firmware falls through to the disk", async () => {
  await runScenario("installed-machine", { subnet: 6, dhcp: "full" }, async ({ ns, dir, kindling: k }) => {
    const mac = "52:54:00:e2:06:01";
    putProfile(k, "e2e", ["kindling.e2e.report={{ urls.report }}"]);
    k.call("POST", "/machines", { mac, profile: "e2e" });
    const disk = join(dir, "disk.raw");
    execFileSync("truncate", ["-s", "64M", disk]);

    const install = startVm("bios-ipxe", ns, dir, mac, disk);
    const booted = await expectBooted(install, k);
    reportTime("installed-machine (install boot)", booted.markerMs);
    expect(install.serial).toMatch(/kindling-e2e: reported install-done/);
    await install.waitExit(60_000);
    expect(k.call("GET", `/machines/${mac}`)).toMatchObject({ state: "installed" });
    const scriptsBefore = k.events(mac).filter((e) => e.kind === "ipxe.request" && e.detail.outcome === "boot").length;

    const rebootDir = join(dir, "reboot");
    execFileSync("mkdir", ["-p", rebootDir]);
    const reboot = startVm("bios-ipxe", ns, rebootDir, mac, disk);
    const fellThrough = await reboot.waitFor(/Booting from Hard Disk/, BOOT_TIMEOUT_MS);
    reportTime("installed-machine (reboot → disk)", fellThrough.atMs);
    // iPXE got an address but no file, gave up, and SeaBIOS went on down its boot order.
    expect(reboot.serial).toMatch(/Nothing to boot/);
    expect(reboot.serial).not.toMatch(/Linux version|kindling-e2e:/);
    const events = k.events(mac);
    const lastAck = events.filter((e) => e.kind === "dhcp.ack").at(-1);
    expect(lastAck?.detail).toMatchObject({ boot: "local-disk" });
    expect(events.filter((e) => e.kind === "ipxe.request" && e.detail.outcome === "boot")).toHaveLength(scriptsBefore);
    reboot.stop();
  });
});
