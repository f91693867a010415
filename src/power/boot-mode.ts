import type { Event } from "../model/event.ts";
import type { Machine } from "../model/machine.ts";
import type { BootMode } from "../model/power.ts";

/**
 * Whether the machine's firmware boots UEFI, from what Kindling recorded: an arm64 machine or one on the GRUB
 * loader is UEFI; otherwise the boot file DHCP last handed it (`.efi` → UEFI, `.kpxe`/`.pxe`/`.0` → BIOS).
 * Undefined when nothing tells (a machine that never network-booted here): the BMC keeps its own mode.
 */
export function bootModeOf(machine: Pick<Machine, "arch" | "loader">, recent: readonly Event[]): BootMode | undefined {
  if (machine.arch === "arm64" || machine.loader === "grub") return "uefi";
  for (const e of recent) {
    const file = e.kind.startsWith("dhcp.") ? e.detail.file : undefined;
    if (typeof file !== "string") continue;
    // iPXE's own DHCP gets a script (boot.ipxe): it says nothing about the firmware, so look further back.
    if (/\.efi$/i.test(file)) return "uefi";
    if (/\.(kpxe|pxe|0)$/i.test(file)) return "legacy";
  }
  return undefined;
}
