import { expect, test } from "vitest";
import { startVm } from "./rig/firmware.ts";
import { expectBooted, putProfile, reportTime, runScenario } from "./rig/scenario.ts";

// Scenario 3: OVMF's own PXE client (virtio NIC, no iPXE ROM) fetches ipxe.efi over TFTP, which goes on over HTTP.
test("UEFI: OVMF PXE → ipxe.efi over TFTP → /boot.ipxe → kernel (EFI stub) → marker", async () => {
  await runScenario("uefi-pxe", { subnet: 3, dhcp: "full" }, async ({ ns, dir, kindling: k }) => {
    const mac = "52:54:00:e2:03:01";
    putProfile(k, "e2e");
    k.call("POST", "/machines", { mac, profile: "e2e" });

    const vm = startVm("uefi", ns, dir, mac);
    const booted = await expectBooted(vm, k);
    reportTime("uefi-pxe", booted.markerMs);
    expect(vm.serial).toMatch(/NBP file downloaded successfully/);

    const boot = `http://${ns.serverIp}:8080/boot.ipxe`;
    const acks = k
      .events(mac)
      .filter((e) => e.kind === "dhcp.ack")
      .map((e) => e.detail.file);
    expect(acks[0]).toBe("ipxe.efi");
    expect(acks.at(-1)).toBe(boot);
    // OVMF asks with tsize first and aborts after the OACK (normal); exactly one full transfer follows.
    const transfers = k.events().filter((e) => e.kind === "tftp.transfer");
    expect(transfers.map((e) => e.detail.file)).toEqual(["ipxe.efi"]);
    expect(
      k.events(mac).some((e) => e.kind === "ipxe.request" && e.detail.outcome === "boot" && e.detail.profile === "e2e"),
    ).toBe(true);
    vm.stop();
  });
});
