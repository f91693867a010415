import { PXE_INITRD, PXE_KERNEL } from "../flatcar/release.ts";
import type { CoalescedLog } from "../limits/coalesce.ts";
import type { Group } from "../model/group.ts";
import { normalizeArch, normalizeMac, normalizeUuid } from "../model/identity.ts";
import type { Machine } from "../model/machine.ts";
import { HostnameSchema } from "../model/machine.ts";
import type { Profile } from "../model/profile.ts";
import type { Store } from "../store/index.ts";
import { bootsFromNetwork } from "./lifecycle.ts";
import type { Machines } from "./machines.ts";
import { chooseProfile, type Labels, type ProfileSource } from "./match.ts";
import { type BootPlan, flatcarKernelArgs, type Loader, planMachine, rawKernelArgs } from "./plan.ts";
import type { ReleaseSource } from "./releases.ts";
import { FLATCAR_CONSOLE_ARGS, ipxeScript, isAbsoluteUrl, waitScript } from "./render.ts";
import { grubMachineConfig, grubWaitConfig } from "./render-grub.ts";
import type { Purpose, Signer } from "./sign.ts";
import { expandKernelArg, TemplateError } from "./template.ts";
import { type TemplateValues, templateValues } from "./values.ts";

export interface BootSettings {
  /** Base URL machines reach Kindling at, e.g. http://10.0.0.1:8080 */
  server: string;
  defaultProfile: string | undefined;
  retrySeconds: number;
  signedUrlSeconds: number;
}

/** A script (or an honest error) for one `/ipxe` request, with what the log line and event need. */
export interface IpxeAnswer {
  status: 200 | 400 | 404 | 500;
  body: string;
  mac?: string;
  profile?: string;
  outcome: BootOutcome;
}

export type BootOutcome =
  | "boot"
  | "local"
  | "wait"
  | "syncing"
  | "bad-request"
  | "missing-profile"
  | "render-error"
  | "too-many-new";

const TOO_MANY_NEW = "too many new machines from this address";

/** DHCP's view of a known machine (BootService.dhcpBoot). */
export interface DhcpBoot {
  fromNetwork: boolean;
  loader: Loader | undefined;
}

/** A machine's boot plan, or the error that stands in for one. */
type Decision =
  | { plan: BootPlan; profile?: string; outcome: BootOutcome }
  | { status: 404 | 500; error: string; profile: string; outcome: BootOutcome };

/** Query keys `/boot.ipxe` sends that are identity, not labels. */
const IDENTITY_KEYS = new Set(["mac", "uuid", "serial", "hostname", "arch", "platform"]);

/** The boot domain behind `/ipxe` and GRUB's per-machine config: look the machine up, record it, decide, render. */
export class BootService {
  /**
   * `requests` logs and records boot requests, counting repeats into a bounded number of events and lines;
   * `machines` (the machine owner) records each request's machine.
   */
  constructor(
    private readonly store: Store,
    private readonly machines: Pick<Machines, "sighting">,
    private readonly settings: BootSettings,
    private readonly releases: ReleaseSource,
    private readonly signer: Signer,
    private readonly requests: CoalescedLog,
  ) {}

  /** Answers `/ipxe` from `ip`, recording the machine (a new MAC becomes `discovered`) and the request. */
  ipxe(query: Record<string, string>, ip: string | undefined): IpxeAnswer {
    const mac = normalizeMac(query.mac ?? "");
    if (!mac) {
      this.requests.record({
        kind: "ipxe.refused",
        client: ip,
        reason: "bad-request",
        detail: { ip, mac: query.mac ?? "" },
        message: "boot request without a MAC",
      });
      return { status: 400, body: "bad or missing mac\n", outcome: "bad-request" };
    }
    const machine = this.machines.sighting(
      {
        mac,
        uuid: normalizeUuid(query.uuid),
        // As long as an operator may type (MachineCreateSchema): the URL could carry kilobytes.
        serial: query.serial?.trim().slice(0, 128) || undefined,
        arch: normalizeArch(query.arch),
        // Anyone on the boot network can send this: only a well-formed hostname is kept.
        hostname: HostnameSchema.safeParse(query.hostname?.trim()).data,
      },
      { by: "ipxe", ip },
    );
    const { server, retrySeconds } = this.settings;
    if (!machine)
      return { status: 200, body: waitScript(TOO_MANY_NEW, retrySeconds, server), mac, outcome: "too-many-new" };
    const { decision, source } = this.decide(machine, query, query.platform);
    const answer: Omit<IpxeAnswer, "mac"> =
      "plan" in decision
        ? { status: 200, body: ipxeScript(decision.plan, server, retrySeconds), outcome: decision.outcome }
        : { status: decision.status, body: `${decision.error}\n`, outcome: decision.outcome };
    if (decision.profile) answer.profile = decision.profile;
    this.requests.record({
      kind: "ipxe.request",
      client: ip,
      mac,
      reason: `${answer.outcome} ${answer.profile ?? ""}`,
      detail: {
        profile: answer.profile ?? null,
        source,
        outcome: answer.outcome,
        state: machine.state,
        status: answer.status,
        ip,
      },
      message: answer.outcome === "missing-profile" ? "boot request for a profile that does not exist" : "boot request",
      level: answer.status === 200 ? "info" : "warn",
    });
    return { ...answer, mac };
  }

  /**
   * A machine's GRUB configuration, asked for by GRUB over TFTP with the MAC it booted from. Everything that
   * stops a boot (no profile, a missing profile, a render error) becomes a wait: GRUB shows the reason and asks
   * again, and the operator's fix is picked up on the next round.
   */
  grub(macText: string, ip: string | undefined): { config: string; outcome: BootOutcome } {
    const { retrySeconds } = this.settings;
    const mac = normalizeMac(macText);
    if (!mac) {
      this.requests.record({
        kind: "grub.refused",
        client: ip,
        reason: "bad-request",
        detail: { ip, mac: macText },
        message: "GRUB config request without a usable MAC",
      });
      return { config: grubWaitConfig("GRUB reported no usable MAC", retrySeconds), outcome: "bad-request" };
    }
    const machine = this.machines.sighting({ mac }, { by: "grub", ip });
    if (!machine) return { config: grubWaitConfig(TOO_MANY_NEW, retrySeconds), outcome: "too-many-new" };
    const { decision, source } = this.decide(machine, {}, "efi");
    let outcome = decision.outcome;
    let config: string;
    if ("plan" in decision) {
      const rendered = grubMachineConfig(decision.plan, retrySeconds);
      if (rendered.ok) config = rendered.config;
      else {
        this.renderFailed(mac, decision.profile ?? "", "grub config", rendered.error);
        outcome = "render-error";
        config = grubWaitConfig(rendered.error, retrySeconds);
      }
    } else config = grubWaitConfig(decision.error, retrySeconds);
    this.requests.record({
      kind: "grub.request",
      client: ip,
      mac,
      reason: `${outcome} ${decision.profile ?? ""}`,
      detail: { profile: decision.profile ?? null, source, outcome, state: machine.state, ip },
      message: outcome === "missing-profile" ? "boot request for a profile that does not exist" : "boot request",
      level: outcome === "missing-profile" ? "warn" : "info",
    });
    return { config, outcome };
  }

  /**
   * What DHCP needs to know of a known machine, from one profile resolution per request: whether it boots from
   * the network now (the rule `/ipxe` follows too, lifecycle.ts), and its loader (its own, else its profile's;
   * undefined leaves it to the firmware's architecture, DhcpConfig `loaders`).
   */
  dhcpBoot(machine: Machine): DhcpBoot {
    const { profile } = this.resolve(machine);
    return {
      fromNetwork: bootsFromNetwork(machine.state, profile),
      loader: machine.loader ?? profile?.loader,
    };
  }

  /** The boot plan for a machine, or why there is none, whichever loader asks. */
  private decide(
    machine: Machine,
    query: Record<string, string>,
    platform: string | undefined,
  ): { decision: Decision; source: ProfileSource | null } {
    const { chosen, profile } = this.resolve(machine, query);
    const plan = planMachine({ machine, chosen, profile });
    const source = chosen?.source ?? null;
    switch (plan.kind) {
      case "wait":
        return { decision: { plan, outcome: "wait" }, source };
      case "local":
        return {
          decision: { plan, outcome: "local", ...(machine.profile ? { profile: machine.profile } : {}) },
          source,
        };
      case "missing-profile":
        // Logged (as a warning) with the request: a client can repeat it at any rate.
        return {
          decision: {
            status: 404,
            error: `profile ${plan.profile} not found`,
            profile: plan.profile,
            outcome: "missing-profile",
          },
          source,
        };
      case "boot":
        try {
          return { decision: this.bootPlan(plan.profile, machine, platform, chosen?.group), source };
        } catch (err) {
          if (!(err instanceof TemplateError)) throw err;
          this.renderFailed(machine.mac, plan.profile.name, "kernel args", err.message);
          return {
            decision: {
              status: 500,
              error: `render failed: ${err.message}`,
              profile: plan.profile.name,
              outcome: "render-error",
            },
            source,
          };
        }
    }
  }

  /** Counted like the request itself: a client can ask for a config that fails to render at any rate. */
  private renderFailed(mac: string, profile: string, what: string, error: string): void {
    this.requests.record({
      kind: "render.failed",
      client: undefined,
      mac,
      reason: profile,
      detail: { profile, what, error },
      message: `${what} failed to render`,
      level: "error",
    });
  }

  /**
   * The profile a machine boots and why: its own, else the most specific matching group, else the default.
   * A group's metadata fills template values under the machine's own (matchbox semantics). `pinnedGroup` is
   * the group a signed URL says the machine booted through: labels its `/ipxe` request sent may have chosen
   * it, and those are not sent again to `/ignition`, so the URL carries the group (when it still exists).
   */
  resolve(
    machine: Machine,
    query: Record<string, string> = {},
    pinnedGroup?: string,
  ): {
    chosen: ReturnType<typeof chooseProfile>;
    profile: Profile | undefined;
    groupMetadata: Record<string, unknown>;
  } {
    const groups = this.store.groups.list();
    const pinned = machine.profile ? undefined : groups.find((g) => g.name === pinnedGroup);
    const chosen = pinned
      ? { profile: pinned.profile, source: "group" as const, group: pinned }
      : chooseProfile({
          machineProfile: machine.profile,
          groups,
          labels: this.labelsFor(machine, query),
          defaultProfile: this.settings.defaultProfile,
        });
    return {
      chosen,
      profile: chosen && this.store.profiles.get(chosen.profile),
      groupMetadata: chosen?.group?.metadata ?? {},
    };
  }

  /** Signed URL for a per-machine endpoint (`/ignition`, `/report`, `/metadata`), pinned to a group when given. */
  signedUrl(path: string, purpose: Purpose, mac: string, group?: string): string {
    const query = this.signer.query(purpose, mac, this.settings.signedUrlSeconds, Date.now(), group);
    return `${this.settings.server}${path}?${query}`;
  }

  /** Template values for a machine under a profile, with its signed URLs. */
  valuesFor(
    machine: Machine,
    profile: Profile,
    opts: { flatcarVersion?: string; group?: Group | undefined } = {},
  ): TemplateValues {
    const url = (path: string, purpose: Purpose) => this.signedUrl(path, purpose, machine.mac, opts.group?.name);
    return templateValues({
      machine,
      profile,
      server: this.settings.server,
      flatcarVersion: opts.flatcarVersion,
      extraMetadata: opts.group?.metadata ?? {},
      // Signed when read: each costs an HMAC, and most kernel arguments name none of them.
      urls: {
        get ignition() {
          return url("/ignition", "ignition");
        },
        get final() {
          return url("/ignition/final", "final");
        },
        get report() {
          return url("/report", "report");
        },
        get metadata() {
          return url("/metadata", "metadata");
        },
      },
    });
  }

  private labelsFor(machine: Machine, query: Record<string, string>): Labels {
    const labels: Labels = {};
    for (const [k, v] of Object.entries(query)) if (!IDENTITY_KEYS.has(k) && v) labels[k] = v;
    Object.assign(labels, machine.labels);
    labels.mac = machine.mac;
    if (machine.uuid) labels.uuid = machine.uuid;
    if (machine.serial) labels.serial = machine.serial;
    if (machine.hostname) labels.hostname = machine.hostname;
    if (machine.arch) labels.arch = machine.arch;
    if (query.platform) labels.platform = query.platform;
    return labels;
  }

  private bootPlan(
    profile: Profile,
    machine: Machine,
    platform: string | undefined,
    group: Group | undefined,
  ): Decision {
    const ignitionUrl = profile.ignition
      ? this.signedUrl("/ignition", "ignition", machine.mac, group?.name)
      : undefined;
    if (profile.flatcar) {
      const release = this.releases.ensure(profile.flatcar);
      if (release.state !== "ready") {
        const reason = `${release.state === "syncing" ? "waiting for" : "cannot mirror"} Flatcar ${profile.flatcar.channel} ${profile.flatcar.version}: ${release.reason}`;
        return { plan: { kind: "wait", reason }, profile: profile.name, outcome: "syncing" };
      }
      const values = this.valuesFor(machine, profile, { flatcarVersion: release.version, group });
      const base = `${release.basePath}/${release.version}`;
      const args = flatcarKernelArgs({
        ignitionUrl,
        consoles: FLATCAR_CONSOLE_ARGS,
        extra: profile.kernelArgs.map((a) => expandKernelArg(a, values)),
      });
      return {
        plan: {
          kind: "kernel",
          comment: `${machine.mac} profile ${profile.name}: Flatcar ${profile.flatcar.channel} ${release.version} ${profile.flatcar.arch} (${platform ?? "unknown"} firmware)`,
          kernel: `${base}/${PXE_KERNEL}`,
          initrds: [`${base}/${PXE_INITRD}`],
          args,
        },
        profile: profile.name,
        outcome: "boot",
      };
    }
    if (profile.boot) {
      const values = this.valuesFor(machine, profile, { group });
      const loc = (u: string) => {
        const expanded = expandKernelArg(u, values);
        return isAbsoluteUrl(expanded) || expanded.startsWith("/") ? expanded : `/${expanded}`;
      };
      const args = rawKernelArgs({
        ignitionUrl,
        args: [...profile.boot.args, ...profile.kernelArgs].map((a) => expandKernelArg(a, values)),
      });
      return {
        plan: {
          kind: "kernel",
          comment: `${machine.mac} profile ${profile.name}`,
          kernel: loc(profile.boot.kernel),
          initrds: profile.boot.initrd.map(loc),
          args,
        },
        profile: profile.name,
        outcome: "boot",
      };
    }
    // planMachine sends localDisk profiles to "local"; a profile validated by its schema has one of the three.
    throw new Error(`profile ${profile.name} has no boot target`);
  }
}
