/**
 * Identity normalisation: every MAC that enters Kindling (API, CLI, iPXE query, DHCP chaddr) becomes the
 * lower-case colon form, so one machine is one row whatever notation the caller used.
 */

const HEX12 = /^[0-9a-f]{12}$/;

/** `52-54-00-AA-BB-CC`, `5254.00aa.bbcc`, `525400aabbcc`, `52:54:00:aa:bb:cc` → `52:54:00:aa:bb:cc`; else null. */
export function normalizeMac(input: string): string | null {
  const s = input.trim().toLowerCase();
  let hex: string | null = null;
  if (/^([0-9a-f]{2}[:-]){5}[0-9a-f]{2}$/.test(s)) {
    // One separator style per address: a mixed `aa:bb-cc...` is a typo, not a MAC.
    const seps = new Set(s.replace(/[0-9a-f]/g, ""));
    if (seps.size === 1) hex = s.replace(/[:-]/g, "");
  } else if (/^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}$/.test(s)) {
    hex = s.replace(/\./g, "");
  } else if (HEX12.test(s)) {
    hex = s;
  }
  if (hex === null) return null;
  return hex.match(/../g)!.join(":");
}

const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));

/** MAC from raw bytes (DHCP chaddr). Runs for every DHCP packet, hence the table instead of toString. */
export function macFromBytes(b: Uint8Array): string {
  return `${HEX[b[0]!]}:${HEX[b[1]!]}:${HEX[b[2]!]}:${HEX[b[3]!]}:${HEX[b[4]!]}:${HEX[b[5]!]}`;
}

/** UUIDs are compared lower-case; iPXE sends an empty string when SMBIOS has none. */
export function normalizeUuid(input: string | undefined): string | undefined {
  const s = input?.trim().toLowerCase();
  return s && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(s) ? s : undefined;
}

/**
 * iPXE's `${buildarch}` and DHCP option 93 name architectures differently; Kindling stores the Flatcar
 * name. `i386` is what BIOS `undionly.kpxe` reports even on 64-bit CPUs, so it maps to amd64.
 */
export function normalizeArch(input: string | undefined): "amd64" | "arm64" | undefined {
  switch (input?.trim().toLowerCase()) {
    case "x86_64":
    case "amd64":
    case "x64":
    case "i386":
    case "i686":
      return "amd64";
    case "arm64":
    case "aarch64":
      return "arm64";
    default:
      return undefined;
  }
}
