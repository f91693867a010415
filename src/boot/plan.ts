import type { Machine } from "../model/machine.ts";
import type { Profile } from "../model/profile.ts";
import type { ProfileSource } from "./match.ts";

/** What `/ipxe` does for a machine, decided from its record and its profile alone. */
export type IpxePlan =
  | { kind: "boot"; profile: Profile; source: ProfileSource }
  | { kind: "local"; reason: string }
  | { kind: "wait"; reason: string }
  | { kind: "missing-profile"; profile: string };

/** Installed machines of an install profile boot their disk; live profiles boot from the network every time. */
export function isInstallProfile(p: Profile): boolean {
  return p.install !== undefined;
}

export function planIpxe(input: {
  machine: Machine;
  chosen: { profile: string; source: ProfileSource } | undefined;
  profile: Profile | undefined;
}): IpxePlan {
  const { machine, chosen, profile } = input;
  if (!chosen) return { kind: "wait", reason: `${machine.mac} has no profile yet` };
  if (!profile) return { kind: "missing-profile", profile: chosen.profile };
  if (profile.localDisk) return { kind: "local", reason: `profile ${profile.name} boots the local disk` };
  if ((machine.state === "installed" || machine.state === "running") && isInstallProfile(profile))
    return { kind: "local", reason: `${machine.mac} is ${machine.state}` };
  return { kind: "boot", profile, source: chosen.source };
}

/**
 * Kernel arguments for a Flatcar PXE boot. `initrd=` must name the image exactly as `initrd --name` does, or
 * the kernel never sees the PXE initrd and hangs at USR-A. `flatcar.first_boot=1` makes Ignition run.
 */
export function flatcarKernelArgs(input: {
  initrdName: string;
  ignitionUrl: string | undefined;
  consoles: string[];
  extra: string[];
}): string[] {
  const args = [`initrd=${input.initrdName}`, "flatcar.first_boot=1"];
  if (input.ignitionUrl) args.push(`ignition.config.url=${input.ignitionUrl}`);
  return [...args, ...input.consoles, ...input.extra];
}

/**
 * Kernel arguments for a raw boot. UEFI iPXE hands initrds to the kernel only when `initrd=<name>` is on the
 * command line, so each initrd is named there unless the profile already does it.
 */
export function rawKernelArgs(input: {
  initrdNames: string[];
  ignitionUrl: string | undefined;
  args: string[];
}): string[] {
  const named = input.args.some((a) => a.startsWith("initrd="));
  const out = named ? [] : input.initrdNames.map((n) => `initrd=${n}`);
  out.push(...input.args);
  if (input.ignitionUrl && !input.args.some((a) => a.startsWith("ignition.config.url=")))
    out.push(`ignition.config.url=${input.ignitionUrl}`);
  return out;
}
