import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { expect, test } from "vitest";
import { startVm } from "./rig/firmware.ts";
import { expectBooted, putProfile, reportTime, runScenario } from "./rig/scenario.ts";

// Scenario: a live (diskless) profile reports `booted` and is `running`; its next power-on must boot from the
// network again — in full mode and in proxy mode, where a machine sent to its disk gets no answer at all.
// A live system's report: `booted` instead of install-started/install-done.
const LIVE_ARGS = ["kindling.e2e.report={{ urls.report }}", "kindling.e2e.report-kinds=booted"];

for (const mode of ["full", "proxy"] as const) {
  test(`live profile (${mode} DHCP): a running machine's second power-on boots from the network again`, async () => {
    const scenario = { subnet: mode === "full" ? 10 : 11, dhcp: mode, ...(mode === "proxy" ? { siteDhcp: true } : {}) };
    await runScenario(`live-profile-${mode}`, scenario, async ({ ns, dir, kindling: k }) => {
      const mac = mode === "full" ? "52:54:00:e2:0a:01" : "52:54:00:e2:0b:01";
      putProfile(k, "live", LIVE_ARGS);
      k.call("POST", "/machines", { mac, profile: "live" });
      const firmware = mode === "full" ? "bios-ipxe" : "uefi";

      const first = startVm(firmware, ns, dir, mac);
      reportTime(`live-profile-${mode} (first boot)`, (await expectBooted(first, k)).markerMs);
      expect(first.serial).toMatch(/kindling-e2e: reported booted/);
      await first.waitExit(60_000);
      expect(k.call("GET", `/machines/${mac}`)).toMatchObject({ state: "running" });

      const secondDir = join(dir, "second");
      mkdirSync(secondDir);
      const second = startVm(firmware, ns, secondDir, mac);
      reportTime(`live-profile-${mode} (second boot)`, (await expectBooted(second, k)).markerMs);
      second.stop();
    });
  });
}
