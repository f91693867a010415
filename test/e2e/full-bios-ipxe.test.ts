import { expect, test } from "vitest";
import { startVm } from "./rig/firmware.ts";
import { expectBooted, putProfile, reportTime, runScenario } from "./rig/scenario.ts";

// Scenario 1: SeaBIOS + QEMU's iPXE ROM, Kindling in full DHCP mode, a registered machine with a raw-boot profile.
test("BIOS + iPXE ROM, full DHCP: DHCP → /boot.ipxe → /ipxe → kernel + initrd → signed Ignition → marker", async () => {
  await runScenario("full-bios-ipxe", { subnet: 1, dhcp: "full" }, async ({ ns, dir, kindling: k }) => {
    const mac = "52:54:00:e2:01:01";
    putProfile(k, "e2e");
    k.call("POST", "/machines", { mac, profile: "e2e" });

    const vm = startVm("bios-ipxe", ns, dir, mac);
    const booted = await expectBooted(vm, k);
    reportTime("full-bios-ipxe", booted.markerMs);
    // The lease came from Kindling's pool on this segment.
    expect(vm.serial).toMatch(
      new RegExp(`kindling-e2e: lease ${ns.prefix.replace(/\./g, "\\.")}\\.1\\d\\d from ${ns.serverIp}`),
    );

    const events = k.events(mac);
    const boot = `http://${ns.serverIp}:8080/boot.ipxe`;
    const offer = events.findIndex((e) => e.kind === "dhcp.offer" && e.detail.file === boot);
    const ack = events.findIndex((e) => e.kind === "dhcp.ack" && e.detail.file === boot);
    const script = events.findIndex(
      (e) => e.kind === "ipxe.request" && e.detail.outcome === "boot" && e.detail.profile === "e2e",
    );
    expect(offer, JSON.stringify(events)).toBeGreaterThanOrEqual(0);
    expect(ack).toBeGreaterThan(offer);
    expect(script).toBeGreaterThan(ack);
    // iPXE went straight to HTTP: no firmware binary was fetched over TFTP.
    expect(k.events().filter((e) => e.kind.startsWith("tftp."))).toEqual([]);
    vm.stop();
  });
});
