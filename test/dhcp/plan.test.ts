/** Boot decisions (src/boot/dhcp-plan.ts), table-tested. */
import { describe, expect, it } from "vitest";
import {
  type BootAnswer,
  type ClientFacts,
  classifyClient,
  isIpxe,
  machineArch,
  planBoot,
  proxyOfferCarriesFile,
} from "../../src/boot/dhcp-plan.ts";
import { bootsFromNetwork } from "../../src/boot/lifecycle.ts";
import type { Loader } from "../../src/boot/plan.ts";
import type { MachineState } from "../../src/model/machine.ts";
import type { Profile } from "../../src/model/profile.ts";

const files = {
  bios: "undionly.kpxe",
  efiIa32: "ipxe32.efi",
  efiX64: "snponly.efi",
  efiArm64: "arm64/ipxe.efi",
  grubX64: "shimx64.efi",
  grubArm64: "grubnetaa64.efi",
};
const loaders = { efiX64: "ipxe", efiArm64: "grub" } as const;
const base = "http://10.0.0.1:8080";
const pxe = (arch: number, vendor = `PXEClient:Arch:${String(arch).padStart(5, "0")}:UNDI:003016`): ClientFacts => ({
  vendorClass: vendor,
  archs: [arch],
  hasIpxeOptions: false,
});
const plan = (facts: ClientFacts, fromNetwork = true, ipxeClasses: string[] = [], loader?: Loader): BootAnswer =>
  planBoot({
    client: classifyClient(facts, ipxeClasses),
    fromNetwork,
    bootFiles: files,
    loaders,
    loader,
    httpBase: base,
  });

describe("boot file by architecture (option 93)", () => {
  it.each([
    [0, "undionly.kpxe", "PXEClient", "amd64"],
    [6, "ipxe32.efi", "PXEClient", "amd64"],
    [7, "snponly.efi", "PXEClient", "amd64"],
    [9, "snponly.efi", "PXEClient", "amd64"],
    [11, "grubnetaa64.efi", "PXEClient", "arm64"],
  ])("arch %i → %s", (arch, file, vendorClass, recorded) => {
    expect(plan(pxe(arch))).toMatchObject({ kind: "boot", file, vendorClass, ipxe: false });
    expect(machineArch(classifyClient(pxe(arch)))).toBe(recorded);
  });

  it.each([
    [15, `${base}/ipxe-bin/ipxe32.efi`],
    [16, `${base}/ipxe-bin/snponly.efi`],
    [19, `${base}/ipxe-bin/arm64/ipxe.efi`],
  ])("UEFI HTTP boot arch %i → absolute URL %s with HTTPClient", (arch, file) => {
    expect(plan(pxe(arch, `HTTPClient:Arch:${String(arch).padStart(5, "0")}:UNDI:003001`))).toEqual({
      kind: "boot",
      file,
      vendorClass: "HTTPClient",
      ipxe: false,
      firmware: expect.any(String),
    });
  });

  it.each([
    [7, "grub", "shimx64.efi"],
    [9, "grub", "shimx64.efi"],
    [11, "ipxe", "arm64/ipxe.efi"],
    [11, "grub", "grubnetaa64.efi"],
    [0, "grub", "undionly.kpxe"],
    [6, "grub", "ipxe32.efi"],
  ] as const)(
    "arch %i with the profile's loader %s → %s (BIOS and 32-bit UEFI have no GRUB path)",
    (arch, loader, file) => {
      expect(plan(pxe(arch), true, [], loader)).toMatchObject({ kind: "boot", file, vendorClass: "PXEClient" });
    },
  );

  it("UEFI HTTP Boot gets iPXE unless the profile asks for GRUB, which cannot boot over HTTP: no file, and why", () => {
    const http = pxe(16, "HTTPClient:Arch:00016:UNDI:003001");
    expect(plan(http, true, [], "ipxe")).toMatchObject({ file: `${base}/ipxe-bin/snponly.efi` });
    expect(plan(http, true, [], "grub")).toEqual({
      kind: "no-loader",
      reason: expect.stringContaining("http module"),
    });
  });

  it("an installed machine boots its disk whatever its loader", () => {
    expect(plan(pxe(7), false, [], "grub")).toEqual({ kind: "local-disk" });
  });

  it.each([10, 18, 20, 1, 255])("arch %i is unknown: no boot file", (arch) => {
    expect(plan(pxe(arch))).toEqual({ kind: "unknown-arch", arch });
  });

  it("takes the arch from option 60 when option 93 is missing", () => {
    expect(plan({ vendorClass: "PXEClient:Arch:00007:UNDI:003016", hasIpxeOptions: false })).toMatchObject({
      file: "snponly.efi",
    });
    expect(plan({ vendorClass: "PXEClient", hasIpxeOptions: false })).toEqual({
      kind: "unknown-arch",
      arch: undefined,
    });
  });

  it("ordinary clients get nothing to boot", () => {
    expect(plan({ vendorClass: "udhcp 1.35.0", hasIpxeOptions: false })).toEqual({ kind: "none" });
    expect(plan({ hasIpxeOptions: false })).toEqual({ kind: "none" });
  });
});

describe("iPXE detection", () => {
  it.each<[string, ClientFacts, string[], boolean]>([
    ["user class iPXE (raw)", { userClasses: ["iPXE"], hasIpxeOptions: true }, [], true],
    ["user class iPXE without 175", { userClasses: ["iPXE"], hasIpxeOptions: false }, [], true],
    ["configured user class", { userClasses: ["kindling"], hasIpxeOptions: false }, ["kindling"], true],
    ["175 without a user class (FlexBoot)", { hasIpxeOptions: true }, [], true],
    ["another user class wins over 175", { userClasses: ["plain-pxe"], hasIpxeOptions: true }, [], false],
    ["neither", { hasIpxeOptions: false }, [], false],
  ])("%s", (_name, facts, classes, expected) => {
    expect(isIpxe(facts, classes)).toBe(expected);
  });

  it("an iPXE client gets the boot script URL, keeping its vendor class", () => {
    expect(plan({ ...pxe(0), userClasses: ["iPXE"], hasIpxeOptions: true })).toEqual({
      kind: "boot",
      file: `${base}/boot.ipxe`,
      vendorClass: "PXEClient",
      ipxe: true,
      firmware: undefined,
    });
    expect(plan({ userClasses: ["iPXE"], hasIpxeOptions: true })).toMatchObject({
      file: `${base}/boot.ipxe`,
      ipxe: true,
    });
  });
});

describe("machine state and profile: the one rule DHCP and /ipxe share", () => {
  const install = { install: { extraArgs: [] } };
  const live = { install: undefined };
  it.each<[MachineState, Pick<Profile, "install"> | undefined, boolean]>([
    ["discovered", undefined, true],
    ["ready", install, true],
    ["installing", install, true],
    ["failed", install, true],
    ["installed", install, false],
    ["running", install, false],
    // A live profile boots from the network on every power-on.
    ["running", live, true],
    // An install reported done boots its disk whatever the profile (a raw profile may run any installer).
    ["installed", live, false],
    // A profile that cannot be resolved (deleted) never sends an installed disk back to the installer.
    ["installed", undefined, false],
  ])("%s with %j → from network: %s", (state, profile, expected) => {
    expect(bootsFromNetwork(state, profile)).toBe(expected);
    const kind = expected ? "boot" : "local-disk";
    expect(plan(pxe(7), bootsFromNetwork(state, profile)).kind).toBe(kind);
    expect(plan({ ...pxe(7), userClasses: ["iPXE"] }, bootsFromNetwork(state, profile)).kind).toBe(kind);
  });
});

describe("proxy offer form", () => {
  const boot = (facts: ClientFacts) => plan(facts) as Extract<BootAnswer, { kind: "boot" }>;
  it.each<[string, ClientFacts, boolean, boolean]>([
    ["BIOS", pxe(0), false, true],
    ["UEFI x64, default", pxe(7), false, false],
    ["UEFI x64, proxyFullOffer", pxe(7), true, true],
    ["UEFI arm64, default", pxe(11), false, false],
    ["UEFI HTTP", pxe(16, "HTTPClient:Arch:00016"), false, true],
    ["iPXE on UEFI", { ...pxe(7), userClasses: ["iPXE"] }, false, true],
  ])("%s (full offer switch %s) carries the file: %s", (_n, facts, switchOn, expected) => {
    expect(proxyOfferCarriesFile(boot(facts), switchOn)).toBe(expected);
  });
});
