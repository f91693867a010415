import { expect, test } from "vitest";
import { startVm } from "./rig/firmware.ts";
import { expectBooted, putProfile, reportTime, runScenario } from "./rig/scenario.ts";

// Scenario 7: OVMF with its PXE switched off boots through UEFI HTTP Boot: the DHCP answer carries vendor class
// HTTPClient and a URL, the firmware fetches ipxe.efi over HTTP, and nothing at all goes over TFTP.
test("UEFI HTTP Boot: OVMF → ipxe.efi by URL over HTTP → /boot.ipxe → kernel → marker, no TFTP", async () => {
  await runScenario("uefi-http-boot", { subnet: 7, dhcp: "full" }, async ({ ns, dir, kindling: k }) => {
    const mac = "52:54:00:e2:07:01";
    putProfile(k, "e2e");
    k.call("POST", "/machines", { mac, profile: "e2e" });

    const vm = startVm("uefi-http", ns, dir, mac);
    const booted = await expectBooted(vm, k);
    reportTime("uefi-http-boot", booted.markerMs);

    const url = `http://${ns.serverIp}:8080/ipxe-bin/ipxe.efi`;
    const events = k.events(mac);
    const offers = events.filter((e) => e.kind === "dhcp.offer");
    // The firmware's own DHCP asked as an HTTP client (arch 16) and was given the loader's URL.
    expect(offers[0]?.detail).toMatchObject({ file: url });
    expect(vm.serial).toMatch(/Start HTTP Boot over IPv4/);
    expect(vm.serial).toMatch(new RegExp(`URI: ${url.replace(/\./g, "\\.")}`));
    // The EFI binary came over HTTP; then iPXE asked for its script.
    expect(events.some((e) => e.kind === "http.asset" && String(e.detail.path).endsWith("/ipxe-bin/ipxe.efi"))).toBe(
      true,
    );
    expect(events.some((e) => e.kind === "ipxe.request" && e.detail.outcome === "boot")).toBe(true);
    expect(k.events().filter((e) => e.kind.startsWith("tftp."))).toEqual([]);
    vm.stop();
  });
});
