import { expect, test } from "vitest";
import { startVm } from "./rig/firmware.ts";
import { expectBooted, putProfile, reportTime, runScenario } from "./rig/scenario.ts";
import { ARM64_TARGET_ARGS, arm64BootTarget, arm64Grub } from "./rig/target.ts";

/** TCG emulating arm64 on this host is several times slower than x86 guests: the boot gets its own bound. */
const ARM64_TEST_MS = 900_000;

// Scenario 9: arm64 UEFI (AAVMF on qemu-system-aarch64 -M virt, TCG). DHCP arch 11 gets Debian's signed arm64
// netboot GRUB (no arm64 iPXE in Debian), which loads the machine's config, Debian's arm64 kernel and an
// initramfs of arm64 busybox over TFTP; the kernel fetches its signed Ignition config.
test(
  "arm64 UEFI: AAVMF PXE → grubnetaa64.efi → GRUB config → arm64 kernel over TFTP → marker",
  async () => {
    await runScenario(
      "arm64-uefi",
      { subnet: 9, dhcp: "full", target: arm64BootTarget, loaders: { "grubnetaa64.efi": arm64Grub() } },
      async ({ ns, dir, kindling: k }) => {
        const mac = "52:54:00:e2:09:01";
        // No loader in the profile: arm64 firmware gets GRUB by the architecture default.
        putProfile(k, "e2e", [], { args: ARM64_TARGET_ARGS });
        k.call("POST", "/machines", { mac, profile: "e2e" });

        const vm = startVm("arm64", ns, dir, mac);
        const booted = await expectBooted(vm, k, 0, ARM64_TEST_MS - 60_000);
        reportTime("arm64-uefi", booted.markerMs);
        expect(vm.serial).toContain(`Kindling: ${mac} profile e2e`);
        expect(vm.serial).toMatch(/Machine model: linux,dummy-virt/);

        const events = k.events(mac);
        expect(events.find((e) => e.kind === "machine.discovered")?.detail).toMatchObject({ arch: "arm64" });
        expect(events.filter((e) => e.kind === "dhcp.ack")[0]?.detail).toMatchObject({ file: "grubnetaa64.efi" });
        expect(events.filter((e) => e.kind === "grub.request").map((e) => e.detail.outcome)).toEqual(["boot"]);
        const files = k
          .events()
          .filter((e) => e.kind === "tftp.transfer")
          .map((e) => String(e.detail.file).replace(/^\//, ""));
        expect(files).toEqual(
          expect.arrayContaining([
            "grubnetaa64.efi",
            `grub/machines/${mac}.cfg`,
            "assets/e2e/vmlinuz",
            "assets/e2e/initrd.gz",
          ]),
        );
        vm.stop();
      },
    );
  },
  ARM64_TEST_MS,
);
