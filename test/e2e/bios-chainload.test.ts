import { expect, test } from "vitest";
import { chainloadLikeVendorRom, startVm } from "./rig/firmware.ts";
import { BOOT_TIMEOUT_MS, collapse, expectBooted, putProfile, reportTime, runScenario } from "./rig/scenario.ts";

// Scenario 2: a plain PXE ROM (QEMU's iPXE ROM typed at over the serial console to act like one) gets
// undionly.kpxe over TFTP; that iPXE gets the HTTP script, which breaks the chainload loop.
test("BIOS chainload: PXE ROM → undionly.kpxe over TFTP → /boot.ipxe → marker, loop broken", async () => {
  await runScenario("bios-chainload", { subnet: 2, dhcp: "full" }, async ({ ns, dir, kindling: k }) => {
    const mac = "52:54:00:e2:02:01";
    putProfile(k, "e2e");
    k.call("POST", "/machines", { mac, profile: "e2e" });

    const vm = startVm("bios-chain", ns, dir, mac);
    await chainloadLikeVendorRom(vm, BOOT_TIMEOUT_MS);
    const booted = await expectBooted(vm, k);
    reportTime("bios-chainload", booted.markerMs);
    expect(vm.serial).toMatch(/undionly\.kpxe/);

    const boot = `http://${ns.serverIp}:8080/boot.ipxe`;
    const dhcp = k.events(mac).filter((e) => e.kind === "dhcp.ack");
    // The ROM (user class PXEClient, despite option 175) got the BIOS loader; the loader (user class iPXE) the script.
    expect(collapse(dhcp.map((e) => e.detail.file)), JSON.stringify(dhcp)).toEqual(["undionly.kpxe", boot]);
    const all = k.events();
    const transfers = all.filter((e) => e.kind === "tftp.transfer");
    expect(transfers.map((e) => e.detail.file)).toEqual(["undionly.kpxe"]);
    const order = (pred: (e: (typeof all)[number]) => boolean) => all.findIndex(pred);
    const romAck = order((e) => e.kind === "dhcp.ack" && e.detail.file === "undionly.kpxe");
    const tftp = order((e) => e.kind === "tftp.transfer");
    const loaderAck = order((e) => e.kind === "dhcp.ack" && e.detail.file === boot);
    const script = order((e) => e.kind === "ipxe.request" && e.detail.outcome === "boot");
    expect(romAck).toBeLessThan(tftp);
    expect(tftp).toBeLessThan(loaderAck);
    expect(loaderAck).toBeLessThan(script);
    vm.stop();
  });
});
