import { expect, test } from "vitest";
import { startVm } from "./rig/firmware.ts";
import { expectBooted, putProfile, reportTime, runScenario } from "./rig/scenario.ts";
import { ARM64_TARGET_ARGS, arm64BootTarget, arm64Grub } from "./rig/target.ts";

/** TCG emulating another architecture: a wider bound than the x86 boots, for a loaded machine. */
const ARM64_BOOT_MS = 480_000;

// Scenario 9: arm64 UEFI (AAVMF on qemu-system-aarch64 -M virt, TCG). DHCP arch 11 gets Debian's signed arm64
// netboot GRUB (no arm64 iPXE in Debian), which loads the machine's config, Debian's arm64 kernel and an
// initramfs of arm64 busybox over TFTP; the kernel fetches its signed Ignition config.
test(
  "arm64 UEFI: AAVMF PXE → grubnetaa64.efi → GRUB config → arm64 kernel over TFTP → marker",
  async () => {
    await runScenario(
      "arm64-uefi",
      {
        subnet: 9,
        dhcp: "full",
        retrySeconds: 3,
        target: arm64BootTarget,
        loaders: { "grubnetaa64.efi": arm64Grub() },
      },
      async ({ ns, dir, kindling: k }) => {
        const mac = "52:54:00:e2:09:01";
        // No loader in the profile: arm64 firmware gets GRUB by the architecture default.
        putProfile(k, "e2e", [], { args: ARM64_TARGET_ARGS });
        k.call("POST", "/machines", { mac });

        // Without a profile GRUB shows why, pauses and asks again, in the same GRUB (one firmware banner).
        const vm = startVm("arm64", ns, dir, mac);
        const first = await vm.waitFor(/Kindling: asking again in 3 s/, ARM64_BOOT_MS);
        await vm.waitFor(/Kindling: asking again in 3 s/, 60_000, first.match.index! + 1);
        k.call("PATCH", `/machines/${mac}`, { profile: "e2e" });
        const booted = await expectBooted(vm, k, 0, ARM64_BOOT_MS);
        expect(vm.serial.match(/UEFI firmware \(version/g)).toHaveLength(1);
        expect(vm.serial).toContain(`Kindling: ${mac} has no profile yet`);
        reportTime("arm64-uefi (two 3 s waits included)", booted.markerMs);
        expect(vm.serial).toContain(`Kindling: ${mac} profile e2e`);
        expect(vm.serial).toMatch(/Linux version \S+-arm64 /);

        const events = k.events(mac);
        // DHCP's arch 11 is recorded on the machine.
        expect(k.call("GET", `/machines/${mac}`)).toMatchObject({ arch: "arm64" });
        expect(events.filter((e) => e.kind === "dhcp.ack")[0]?.detail).toMatchObject({ file: "grubnetaa64.efi" });
        // Repeated waits are counted into one row (limits/coalesce.ts); the boot is news and comes last.
        const outcomes = events.filter((e) => e.kind === "grub.request").map((e) => e.detail.outcome);
        expect(outcomes[0]).toBe("wait");
        expect(outcomes.at(-1)).toBe("boot");
        expect(new Set(outcomes.slice(0, -1))).toEqual(new Set(["wait"]));
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
  ARM64_BOOT_MS + 120_000,
);
