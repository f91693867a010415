import { readFileSync } from "node:fs";
import { expect, test } from "vitest";
import { startVm } from "./rig/firmware.ts";
import { expectBooted, putProfile, reportTime, runScenario } from "./rig/scenario.ts";

// Scenario 4: the site's DHCP server (dnsmasq, no PXE options) hands out addresses; Kindling only adds boot
// information as proxyDHCP: an offer on 67, the boot file in its ACK on 4011. OVMF's PXE takes that path.
test("proxy mode beside a plain DHCP server: UEFI PXE boots through Kindling's 67 + 4011 answers", async () => {
  await runScenario("proxy-dhcp", { subnet: 4, dhcp: "proxy", siteDhcp: true }, async ({ ns, dir, kindling: k }) => {
    const mac = "52:54:00:e2:04:01";
    putProfile(k, "e2e");
    k.call("POST", "/machines", { mac, profile: "e2e" });

    const vm = startVm("uefi", ns, dir, mac);
    const booted = await expectBooted(vm, k);
    reportTime("proxy-dhcp", booted.markerMs);

    const events = k.events(mac);
    expect(
      events.some((e) => e.kind === "dhcp.offer" && e.detail.proxy === true),
      JSON.stringify(events),
    ).toBe(true);
    const ack4011 = events.find((e) => e.kind === "dhcp.ack" && e.detail.port === "proxy");
    expect(ack4011?.detail.file).toBe("ipxe.efi");
    expect(events.some((e) => e.kind === "ipxe.request" && e.detail.outcome === "boot")).toBe(true);
    // Kindling leased nothing: the addresses came from dnsmasq's log.
    expect(events.filter((e) => e.kind === "dhcp.ack" && e.detail.proxy !== true)).toEqual([]);
    expect(readFileSync(`${dir}/dnsmasq.log`, "utf8")).toMatch(
      new RegExp(`DHCPACK\\(eth0\\) ${ns.prefix.replace(/\./g, "\\.")}\\.\\d+ ${mac}`),
    );
    vm.stop();
  });
});
