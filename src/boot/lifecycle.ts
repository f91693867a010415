import type { MachineState } from "../model/machine.ts";
import type { Profile } from "../model/profile.ts";

/**
 * What can happen to a machine. Reports come from the installer and the installed system over signed URLs;
 * `assign`/`unassign`/`reinstall` from operators; `deadline` from the install watchdog.
 */
export const LIFECYCLE_EVENTS = [
  "assign",
  "unassign",
  "install-started",
  "install-done",
  "install-failed",
  "first-boot",
  "booted",
  "reinstall",
  "deadline",
] as const;
export type LifecycleEvent = (typeof LIFECYCLE_EVENTS)[number];

/** Events a machine may report about itself through `/report`. */
export const REPORT_KINDS = ["install-started", "install-done", "install-failed", "first-boot", "booted"] as const;
export type ReportKind = (typeof REPORT_KINDS)[number];

export type Transition = { ok: true; to: MachineState } | { ok: false; reason: string };

type Rule = Partial<Record<MachineState, MachineState>>;

/**
 * The state machine (DESIGN.md §4, issue 7). A missing entry is an illegal transition. Repeats that change
 * nothing (a second `first-boot`, assigning another profile to an installed machine) are allowed and keep
 * the state, so a retried report is harmless.
 */
const RULES: Record<LifecycleEvent, Rule> = {
  assign: {
    discovered: "ready",
    ready: "ready",
    installing: "installing",
    installed: "installed",
    running: "running",
    failed: "failed",
  },
  unassign: {
    discovered: "discovered",
    ready: "discovered",
    installed: "installed",
    running: "running",
    failed: "failed",
  },
  // From `failed` too: the machine was rebooted into the installer again (by hand or by its firmware).
  // From `discovered`: a machine with no profile of its own booted through a group or the default profile.
  // Reports come only over URLs Kindling signed when it served that boot, so the install is real; without
  // this the machine would stay `discovered` and be sent to the installer again on every boot.
  "install-started": { discovered: "installing", ready: "installing", installing: "installing", failed: "installing" },
  "install-done": { installing: "installed", installed: "installed" },
  "install-failed": { installing: "failed", failed: "failed" },
  "first-boot": { installed: "running", running: "running" },
  // Live (diskless) profiles: every network boot ends in a running system, and it stays on the network path.
  booted: { discovered: "running", ready: "running", running: "running" },
  reinstall: { ready: "ready", installing: "ready", installed: "ready", running: "ready", failed: "ready" },
  deadline: { installing: "failed" },
};

/** A machine registered with a profile is in line to boot it; without one it waits to be assigned. */
export const initialState = (profile: string | null | undefined): MachineState => (profile ? "ready" : "discovered");

export function nextState(from: MachineState, event: LifecycleEvent, hasProfile: boolean): Transition {
  if ((event === "reinstall" || event === "assign") && !hasProfile)
    return {
      ok: false,
      reason: `a machine needs a profile to ${event === "assign" ? "be assigned" : "be reinstalled"}`,
    };
  const to = RULES[event][from];
  return to ? { ok: true, to } : { ok: false, reason: `${event} is not allowed in state ${from}` };
}

/** Machines whose install has run longer than the deadline without a report. */
export function overdueInstalls<M extends { state: MachineState; stateChangedAt: string }>(
  machines: readonly M[],
  now: number,
  deadlineSeconds: number,
): M[] {
  return machines.filter(
    (m) => m.state === "installing" && now - Date.parse(m.stateChangedAt) > deadlineSeconds * 1000,
  );
}

/**
 * The one rule for whether a machine's next power-on boots from the network, used by DHCP (boot file or none)
 * and `/ipxe` (kernel or local boot) alike. An install that reported done boots its disk (`installed`, whatever
 * the profile: a raw `boot` profile may run any installer). `running` is reached two ways: a first boot from
 * disk (`installed` → `running`) or a live system's report (`ready` → `running`); a live profile (one with no
 * `install` block) keeps booting from the network, anything else boots its disk. A machine whose profile cannot
 * be resolved keeps its disk: an installed machine is never reinstalled by accident.
 */
export function bootsFromNetwork(state: MachineState, profile: Pick<Profile, "install"> | undefined): boolean {
  if (state === "installed") return false;
  if (state !== "running") return true;
  return profile !== undefined && profile.install === undefined;
}
