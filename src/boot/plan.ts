import type { Machine } from "../model/machine.ts";
import type { Profile } from "../model/profile.ts";
import { bootsFromNetwork } from "./lifecycle.ts";
import type { ProfileSource } from "./match.ts";

export type { Loader } from "../model/machine.ts";

/** What a machine's loader is told to do (whichever loader), decided from its record and its profile alone. */
export type MachinePlan =
  | { kind: "boot"; profile: Profile; source: ProfileSource }
  | { kind: "local"; reason: string }
  | { kind: "wait"; reason: string }
  | { kind: "missing-profile"; profile: string };

/**
 * One boot, whichever loader runs it: the renderers (`render.ts` for iPXE, `render-grub.ts` for GRUB) turn it
 * into their language. Files are Kindling paths (`/assets/...`, served over HTTP and TFTP) or absolute URLs.
 */
export type BootPlan =
  | {
      kind: "kernel";
      comment: string;
      kernel: string;
      initrds: string[];
      /** Kernel arguments, loader-neutral: iPXE's `initrd=<name>` arguments are the iPXE renderer's business. */
      args: string[];
    }
  | { kind: "local"; reason: string }
  | { kind: "wait"; reason: string };

export function planMachine(input: {
  machine: Machine;
  chosen: { profile: string; source: ProfileSource } | undefined;
  profile: Profile | undefined;
}): MachinePlan {
  const { machine, chosen, profile } = input;
  if (!chosen) return { kind: "wait", reason: `${machine.mac} has no profile yet` };
  if (!profile) return { kind: "missing-profile", profile: chosen.profile };
  if (profile.localDisk) return { kind: "local", reason: `profile ${profile.name} boots the local disk` };
  if (!bootsFromNetwork(machine.state, profile)) return { kind: "local", reason: `${machine.mac} is ${machine.state}` };
  return { kind: "boot", profile, source: chosen.source };
}

/** Kernel arguments for a Flatcar PXE boot. `flatcar.first_boot=1` makes Ignition run. */
export function flatcarKernelArgs(input: {
  ignitionUrl: string | undefined;
  consoles: string[];
  extra: string[];
}): string[] {
  const args = ["flatcar.first_boot=1"];
  if (input.ignitionUrl) args.push(`ignition.config.url=${input.ignitionUrl}`);
  return [...args, ...input.consoles, ...input.extra];
}

/** Kernel arguments for a raw boot: the profile's, plus the signed Ignition URL unless the profile sets one. */
export function rawKernelArgs(input: { ignitionUrl: string | undefined; args: string[] }): string[] {
  const out = [...input.args];
  if (input.ignitionUrl && !input.args.some((a) => a.startsWith("ignition.config.url=")))
    out.push(`ignition.config.url=${input.ignitionUrl}`);
  return out;
}

/**
 * Arguments as iPXE passes them. UEFI iPXE hands initrds to the kernel only when `initrd=<name>` is on the
 * command line (Flatcar without it hangs at USR-A), so each initrd is named there unless the profile already
 * does it. GRUB loads initrds itself and needs none of this.
 */
export function ipxeKernelArgs(initrdNames: string[], args: string[]): string[] {
  const named = args.some((a) => a.startsWith("initrd="));
  return [...(named ? [] : initrdNames.map((n) => `initrd=${n}`)), ...args];
}
