import type { Netns } from "./netns.ts";
import { Vm, type VmOptions } from "./qemu.ts";

/**
 * The kinds of firmware the scenarios boot:
 * - `bios-ipxe`: SeaBIOS + the e1000's iPXE option ROM (what QEMU ships), which asks for a script at once;
 * - `bios-chain`: the same ROM driven over the serial console to behave like a vendor PXE ROM — it
 *   announces itself as `PXEClient` and chainloads whatever boot file DHCP names over TFTP
 *   (Debian ships no non-iPXE PXE ROM);
 * - `uefi`: OVMF with a virtio NIC and no option ROM, so OVMF's own PXE client does DHCP and TFTP;
 * - `uefi-http`: the same OVMF with its PXE switched off, so it boots through UEFI HTTP Boot (no TFTP);
 * - `uefi-secboot`: OVMF's Secure Boot build with Microsoft's keys enrolled (enforcing), IPv4 PXE then HTTP Boot;
 * - `arm64`: AAVMF on `qemu-system-aarch64 -M virt` (TCG), its own PXE client on a virtio NIC.
 */
export type Firmware = "bios-ipxe" | "bios-chain" | "uefi" | "uefi-http" | "uefi-secboot" | "arm64";

const VM: Record<Firmware, Pick<VmOptions, "firmware" | "nic" | "rom" | "pxe">> = {
  "bios-ipxe": { firmware: "seabios", nic: "e1000", rom: "ipxe" },
  "bios-chain": { firmware: "seabios", nic: "e1000", rom: "ipxe" },
  uefi: { firmware: "ovmf", nic: "virtio", rom: "none" },
  "uefi-http": { firmware: "ovmf", nic: "virtio", rom: "none", pxe: "off" },
  "uefi-secboot": { firmware: "ovmf-secboot", nic: "virtio", rom: "none", pxe: "ipv4" },
  arm64: { firmware: "aavmf", nic: "virtio", rom: "none" },
};

export function startVm(
  firmware: Firmware,
  ns: Netns,
  workDir: string,
  mac: string,
  disk?: string,
  logName?: string,
): Vm {
  return new Vm({ ns, workDir, mac, disk, logName, ...VM[firmware] });
}

/**
 * Types `text` one key at a time, each only after the previous one was echoed: SeaBIOS passes serial
 * input to the keyboard buffer at its own pace, and keys sent faster than a slow (TCG, busy host) guest
 * reads them were seen to get lost.
 */
async function typeKeys(vm: Vm, text: string): Promise<void> {
  for (const ch of text) {
    const from = vm.serial.length;
    vm.type(ch);
    // Enter echoes a line break (or the command's output); every other key echoes itself.
    await vm.waitFor(ch === "\r" ? /[\s\S]/ : new RegExp(ch.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")), 10_000, from);
  }
}

/** Types a command at the iPXE prompt and waits for the next prompt. */
async function command(vm: Vm, line: string, timeoutMs: number): Promise<void> {
  await typeKeys(vm, line);
  const from = vm.serial.length;
  await typeKeys(vm, "\r");
  await vm.waitFor(/iPXE> /, timeoutMs, from);
}

/**
 * Turns the iPXE ROM into a plain PXE ROM: break into its shell, replace the `iPXE` user class, do DHCP and
 * chain the boot file over TFTP. It still sends option 175, so the server must let the explicit user
 * class win. The last command does not return if the chained loader boots.
 */
export async function chainloadLikeVendorRom(vm: Vm, timeoutMs: number): Promise<void> {
  await vm.waitFor(/Press Ctrl-B for the iPXE command line/, timeoutMs);
  vm.type("\x02");
  await vm.waitFor(/iPXE> /, timeoutMs);
  await command(vm, "set user-class PXEClient", timeoutMs);
  await command(vm, "ifconf -c dhcp net0", timeoutMs);
  // iPXE as a PXE stack hands the chained loader a fake cached DHCPACK built from its settings; left in,
  // the user class would make undionly.kpxe announce itself as PXEClient too and loop. A vendor ROM has none.
  await command(vm, "clear user-class", timeoutMs);
  await typeKeys(vm, "chain tftp://${next-server}/${filename}\r");
}

/** Records the bridge (headers and DHCP payloads; snaplen keeps kernel downloads small) for failure analysis. */
export function startCapture(ns: Netns, file: string): void {
  ns.spawn("tcpdump", ["-i", ns.bridge, "-s", "700", "-U", "-n", "-w", file], { stdio: "ignore" });
}
