import { expect, test } from "vitest";
import { startVm } from "./rig/firmware.ts";
import { BOOT_TIMEOUT_MS, expectBooted, putProfile, reportTime, runScenario } from "./rig/scenario.ts";

// Scenario 5: a machine nobody registered boots into the wait-and-retry script, shows up as discovered, and
// boots the profile an operator assigns through the API — the VM keeps running, nobody restarts it.
test("unknown machine: discovered → assigned via API → the waiting VM boots without a restart", async () => {
  await runScenario(
    "unknown-machine",
    { subnet: 5, dhcp: "full", retrySeconds: 3 },
    async ({ ns, dir, kindling: k }) => {
      const mac = "52:54:00:e2:05:01";
      putProfile(k, "e2e");
      const vm = startVm("bios-ipxe", ns, dir, mac);
      await vm.waitFor(/asking again in 3 s/, BOOT_TIMEOUT_MS);

      const machine = k.call("GET", `/machines/${mac}`) as { state: string; profile: string | null };
      expect(machine).toMatchObject({ state: "discovered", profile: null });
      // Nobody registered it: its story starts when Kindling's DHCP first saw it, not with an API call.
      const story = k.events(mac);
      expect(story[0], JSON.stringify(story)).toMatchObject({ kind: "machine.discovered", detail: { via: "dhcp" } });
      expect(story[1]?.kind).toBe("dhcp.offer");
      expect(story.some((e) => e.kind === "machine.registered")).toBe(false);
      const waiting = k.events(mac).filter((e) => e.kind === "ipxe.request");
      expect(waiting.every((e) => e.detail.outcome === "wait")).toBe(true);

      const assignedAt = vm.serial.length;
      k.call("PATCH", `/machines/${mac}`, { profile: "e2e" });
      const booted = await expectBooted(vm, k, assignedAt);
      reportTime("unknown-machine (QEMU start, including the wait)", booted.markerMs);
      // One power-on: the firmware banner appears once, the retry loop ran inside the same iPXE.
      expect(vm.serial.match(/SeaBIOS \(version/g)).toHaveLength(1);
      const after = k
        .events(mac)
        .filter((e) => e.kind === "ipxe.request")
        .map((e) => e.detail.outcome);
      expect(after.at(-1)).toBe("boot");
      expect(after.slice(0, -1).every((o) => o === "wait")).toBe(true);
      vm.stop();
    },
  );
});
