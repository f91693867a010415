/**
 * What Kindling tells a booting client over DHCP: pure decisions over the facts a request carries and the
 * machine's state, so every rule is table-tested without sockets.
 */
import type { Arch } from "../model/machine.ts";
import type { Loader } from "./plan.ts";

/** Firmware families that get different iPXE binaries. */
export type Firmware = "bios" | "efi-ia32" | "efi-x64" | "efi-arm64";

export interface BootFiles {
  bios: string;
  efiIa32: string;
  efiX64: string;
  efiArm64: string;
  /** First file of the GRUB path on x64 UEFI: shim, which then fetches `grubx64.efi` from the same directory. */
  grubX64: string;
  /** First file of the GRUB path on arm64 UEFI. */
  grubArm64: string;
}

/** The loader PXE (TFTP) firmware gets when its profile names none. */
export interface LoaderDefaults {
  efiX64: Loader;
  efiArm64: Loader;
}

/**
 * RFC 4578 option 93 (with the IANA registry's HTTP-boot additions). 7 and 9 are both x64 UEFI: the RFC
 * swapped them and firmware in the field sends either. 32-bit ARM and BIOS HTTP have no Flatcar or iPXE
 * binary here, so they are unknown on purpose.
 */
const ARCHES: Record<number, { firmware: Firmware; http: boolean }> = {
  0: { firmware: "bios", http: false },
  6: { firmware: "efi-ia32", http: false },
  7: { firmware: "efi-x64", http: false },
  9: { firmware: "efi-x64", http: false },
  11: { firmware: "efi-arm64", http: false },
  15: { firmware: "efi-ia32", http: true },
  16: { firmware: "efi-x64", http: true },
  19: { firmware: "efi-arm64", http: true },
};

/** What a DHCP request says about its sender. */
export interface ClientFacts {
  /** Option 60. */
  vendorClass?: string | undefined;
  /** Option 93 values. */
  archs?: number[] | undefined;
  /** Option 77 classes (raw or RFC 3004, already split). */
  userClasses?: string[] | undefined;
  /** Option 175 present (iPXE's encapsulated options). */
  hasIpxeOptions: boolean;
}

export type Client =
  /** Not a network-boot client: an ordinary DHCP client (full mode leases it, proxy mode ignores it). */
  | { kind: "plain" }
  | { kind: "ipxe"; arch: number | undefined; vendorClass: "PXEClient" | "HTTPClient" | undefined }
  | { kind: "pxe"; arch: number; firmware: Firmware; http: boolean }
  | { kind: "unknown-arch"; arch: number | undefined };

const bootVendor = (vc: string | undefined): "PXEClient" | "HTTPClient" | undefined =>
  vc?.startsWith("PXEClient") ? "PXEClient" : vc?.startsWith("HTTPClient") ? "HTTPClient" : undefined;

/** `PXEClient:Arch:00007:UNDI:003016` → 7, for clients that put the arch only in option 60. */
function archFromVendorClass(vc: string | undefined): number | undefined {
  const m = vc?.match(/^(?:PXE|HTTP)Client:Arch:(\d{5})/);
  return m ? Number(m[1]) : undefined;
}

/**
 * iPXE detection: user class `iPXE` (or a configured one) → iPXE; option 175 without any user class → iPXE
 * (iPXE-derived ROMs such as FlexBoot send none); any other user class wins over 175, because a ROM
 * scripted to act as a plain PXE client still sends 175.
 */
export function isIpxe(facts: ClientFacts, ipxeUserClasses: readonly string[] = []): boolean {
  const classes = facts.userClasses ?? [];
  if (classes.some((c) => c === "iPXE" || ipxeUserClasses.includes(c))) return true;
  return classes.length === 0 && facts.hasIpxeOptions;
}

export function classifyClient(facts: ClientFacts, ipxeUserClasses: readonly string[] = []): Client {
  const vendor = bootVendor(facts.vendorClass);
  const arch = facts.archs?.[0] ?? archFromVendorClass(facts.vendorClass);
  if (isIpxe(facts, ipxeUserClasses)) return { kind: "ipxe", arch, vendorClass: vendor };
  if (!vendor) return { kind: "plain" };
  const known = arch === undefined ? undefined : ARCHES[arch];
  if (!known || arch === undefined) return { kind: "unknown-arch", arch };
  // A PXEClient asking with an HTTP arch (or the reverse) is taken at its arch: that is what it can run.
  return { kind: "pxe", arch, firmware: known.firmware, http: known.http || vendor === "HTTPClient" };
}

/** Arch recorded on the machine (Flatcar names); BIOS PXE is x86, which Kindling provisions as amd64. */
export function machineArch(client: Client): Arch | undefined {
  const arch =
    client.kind === "pxe" || client.kind === "ipxe" || client.kind === "unknown-arch" ? client.arch : undefined;
  const fw = arch === undefined ? undefined : ARCHES[arch]?.firmware;
  return fw === undefined ? undefined : fw === "efi-arm64" ? "arm64" : "amd64";
}

export const bootFileFor = (firmware: Firmware, files: BootFiles): string =>
  ({ bios: files.bios, "efi-ia32": files.efiIa32, "efi-x64": files.efiX64, "efi-arm64": files.efiArm64 })[firmware];

export type BootAnswer =
  /** Not a boot client: lease only (full) or silence (proxy). */
  | { kind: "none" }
  /** Boots its disk this time (installed under an install profile): no boot file, firmware falls through. */
  | { kind: "local-disk" }
  | { kind: "unknown-arch"; arch: number | undefined }
  /** The machine's loader cannot run on this path (GRUB over UEFI HTTP Boot): no boot file, and why. */
  | { kind: "no-loader"; reason: string }
  | {
      kind: "boot";
      /** TFTP path, or an absolute http:// URL. */
      file: string;
      /** Reply echoes option 60 as this (proxy offers; HTTP boot always needs `HTTPClient`). */
      vendorClass: "PXEClient" | "HTTPClient";
      ipxe: boolean;
      firmware: Firmware | undefined;
    };

export interface BootPlanInput {
  client: Client;
  /** Whether the machine boots from the network this time (lifecycle.ts `bootsFromNetwork`); new MACs do. */
  fromNetwork: boolean;
  bootFiles: BootFiles;
  loaders: LoaderDefaults;
  /** The loader the machine's profile names, if any. */
  loader?: Loader | undefined;
  /** `http://<advertise>:<port>` */
  httpBase: string;
}

/**
 * Which loader a UEFI firmware gets: the profile's choice, else the architecture's default. BIOS and 32-bit
 * UEFI have no GRUB path here (no signed netboot GRUB for them), and UEFI HTTP Boot defaults to iPXE because
 * Debian's signed GRUB cannot fetch its config over HTTP.
 */
export function loaderFor(firmware: Firmware, http: boolean, chosen: Loader | undefined, d: LoaderDefaults): Loader {
  if (firmware === "bios" || firmware === "efi-ia32") return "ipxe";
  if (chosen) return chosen;
  if (http) return "ipxe";
  return firmware === "efi-x64" ? d.efiX64 : d.efiArm64;
}

export function planBoot({ client, fromNetwork, bootFiles, loaders, loader, httpBase }: BootPlanInput): BootAnswer {
  if (client.kind === "plain") return { kind: "none" };
  if (!fromNetwork) return { kind: "local-disk" };
  if (client.kind === "unknown-arch") return { kind: "unknown-arch", arch: client.arch };
  if (client.kind === "ipxe") {
    // iPXE fetches the script over HTTP itself, which ends the chainload loop.
    return {
      kind: "boot",
      file: `${httpBase}/boot.ipxe`,
      vendorClass: client.vendorClass ?? "PXEClient",
      ipxe: true,
      firmware: undefined,
    };
  }
  const grub = loaderFor(client.firmware, client.http, loader, loaders) === "grub";
  if (grub && client.http)
    return {
      kind: "no-loader",
      reason: "the profile's loader is grub, and Debian's signed GRUB has no http module for UEFI HTTP Boot",
    };
  const binary = grub
    ? client.firmware === "efi-arm64"
      ? bootFiles.grubArm64
      : bootFiles.grubX64
    : bootFileFor(client.firmware, bootFiles);
  // UEFI HTTP boot follows no redirects: the URL must name the binary exactly where HTTP serves it.
  if (client.http)
    return {
      kind: "boot",
      file: `${httpBase}/ipxe-bin/${binary}`,
      vendorClass: "HTTPClient",
      ipxe: false,
      firmware: client.firmware,
    };
  return { kind: "boot", file: binary, vendorClass: "PXEClient", ipxe: false, firmware: client.firmware };
}

/**
 * Proxy mode: does the OFFER on port 67 carry the boot file (with 43.6 = 8, skip discovery)? BIOS ROMs,
 * iPXE and HTTP boot use it as is; UEFI PXE firmware by default gets siaddr only and asks port 4011.
 */
export function proxyOfferCarriesFile(answer: Extract<BootAnswer, { kind: "boot" }>, proxyFullOffer: boolean): boolean {
  if (answer.ipxe || answer.vendorClass === "HTTPClient" || answer.firmware === "bios") return true;
  return proxyFullOffer;
}
