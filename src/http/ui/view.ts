import type { BootService } from "../../boot/service.ts";
import type { Mirror } from "../../flatcar/mirror.ts";
import type { Machine } from "../../model/machine.ts";
import type { Profile } from "../../model/profile.ts";

/** A machine as the console shows it: which profile it boots (and why) and what that resolves to. */
export interface MachineView {
  machine: Machine;
  profile: string | null;
  /** Where the profile comes from when it is not the machine's own. */
  via: "group" | "default" | null;
  release: string;
}

/** What a profile boots, in words: `stable / current → 4593.2.5`, `raw boot`, `local disk`. */
export function releaseOf(profile: Profile | undefined, mirror: Mirror): string {
  if (!profile) return "—";
  if (profile.flatcar) {
    const { channel, version, arch } = profile.flatcar;
    if (version !== "current")
      return `${channel} / ${version}${mirror.isMirrored(channel, arch, version) ? "" : " (not mirrored yet)"}`;
    return `${channel} / current → ${mirror.currentVersion(channel, arch) ?? "not mirrored yet"}`;
  }
  return profile.boot ? "raw boot" : "local disk";
}

export function machineView(machine: Machine, boot: BootService, mirror: Mirror): MachineView {
  const { chosen, profile } = boot.resolve(machine);
  return {
    machine,
    profile: chosen?.profile ?? null,
    via: chosen && chosen.source !== "machine" ? chosen.source : null,
    release: releaseOf(profile, mirror),
  };
}
