import { expect, test } from "vitest";
import { startVm } from "./rig/firmware.ts";
import { BOOT_TIMEOUT_MS, expectBooted, putProfile, reportTime, runScenario } from "./rig/scenario.ts";

// Scenario 8: OVMF's Secure Boot build with Microsoft's keys enrolled. A profile with `loader: grub` sends the
// machine down the signed chain: shim (Microsoft-signed) → Debian's signed netboot GRUB, which reads
// /grub/grub.cfg and the machine's own config over TFTP → Debian's signed kernel and the initramfs over TFTP →
// marker. Then the same VM (same NVRAM), its machine record set to `loader: ipxe`, refuses the unsigned ipxe.efi:
// enforcement was on (and a machine's own loader wins over its profile's).
test("Secure Boot: shim → signed GRUB → signed kernel to the marker; the same VM refuses unsigned iPXE", async () => {
  await runScenario("secure-boot", { subnet: 8, dhcp: "full" }, async ({ ns, dir, kindling: k }) => {
    const mac = "52:54:00:e2:08:01";
    putProfile(k, "e2e", [], { loader: "grub" });
    k.call("POST", "/machines", { mac, profile: "e2e" });

    const vm = startVm("uefi-secboot", ns, dir, mac);
    const booted = await expectBooted(vm, k);
    reportTime("secure-boot (shim → GRUB)", booted.markerMs);
    // GRUB ran the config Kindling rendered for this machine; the kernel booted under enforced Secure Boot.
    expect(vm.serial).toContain(`Kindling: ${mac} profile e2e`);
    expect(vm.serial).toMatch(/Secure boot enabled/);
    expect(vm.serial).toMatch(/EFI stub: UEFI Secure Boot is enabled/);
    expect(vm.serial).toMatch(/Kernel is locked down from EFI Secure Boot/);

    const acks = k.events(mac).filter((e) => e.kind === "dhcp.ack");
    expect(acks[0]?.detail).toMatchObject({ file: "shimx64.efi" });
    const files = k
      .events()
      .filter((e) => e.kind === "tftp.transfer")
      .map((e) => String(e.detail.file).replace(/^\//, ""));
    expect(files).toEqual(
      expect.arrayContaining([
        "shimx64.efi",
        "grubx64.efi",
        "grub/grub.cfg",
        `grub/machines/${mac}.cfg`,
        "assets/e2e/vmlinuz",
        "assets/e2e/initrd.gz",
      ]),
    );
    expect(files).not.toContain("ipxe.efi");
    expect(
      k
        .events(mac)
        .filter((e) => e.kind === "grub.request")
        .map((e) => e.detail.outcome),
    ).toEqual(["boot"]);
    expect(k.events(mac).some((e) => e.kind === "ipxe.request")).toBe(false);
    await vm.waitExit(60_000);

    // Same machine, same NVRAM, its own loader set to iPXE (over the profile's GRUB): the firmware downloads
    // ipxe.efi, by PXE and then by HTTP Boot, and refuses to start it either way.
    k.call("PATCH", `/machines/${mac}`, { loader: "ipxe" });
    const unsigned = startVm("uefi-secboot", ns, dir, mac, undefined, "serial-unsigned.log");
    const refused = await unsigned.waitFor(/failed to load Boot\d+ "UEFI HTTPv4[^\n]*Access Denied/, BOOT_TIMEOUT_MS);
    reportTime("secure-boot", refused.atMs, "ipxe.efi refused by PXE and by HTTP Boot");
    unsigned.stop();
    // OVMF cuts its PXE failure line short of the status; the download succeeded and the start did not.
    expect(unsigned.serial).toMatch(
      /NBP filename is ipxe\.efi[\s\S]*NBP file downloaded successfully\.[\s\S]*failed to load Boot\d+ "UEFI PXEv4/,
    );
    expect(
      k
        .events()
        .filter((e) => e.kind === "tftp.transfer")
        .map((e) => String(e.detail.file)),
    ).toContain("ipxe.efi");
    const answers = k.events(mac).filter((e) => e.kind === "dhcp.ack");
    expect(answers.map((e) => e.detail.file)).toEqual(
      expect.arrayContaining(["ipxe.efi", `http://${ns.serverIp}:8080/ipxe-bin/ipxe.efi`]),
    );
    expect(k.events(mac).some((e) => e.kind === "ipxe.request")).toBe(false);
    expect(unsigned.serial).not.toMatch(/iPXE initialising|kindling-e2e:/);
  });
});
