import type { CoalescedLog } from "../limits/coalesce.ts";
import { KeyedRate } from "../limits/rate.ts";
import type { Machine } from "../model/machine.ts";
import { HostnameSchema } from "../model/machine.ts";
import type { Profile } from "../model/profile.ts";
import type { Store } from "../store/index.ts";
import { normalizeArch, normalizeMac, normalizeUuid } from "./identity.ts";
import { chooseProfile, type Labels } from "./match.ts";
import { flatcarKernelArgs, planIpxe, rawKernelArgs } from "./plan.ts";
import type { ReleaseSource } from "./releases.ts";
import {
  FLATCAR_CONSOLE_ARGS,
  initrdName,
  kernelScript,
  localBootScript,
  PXE_INITRD_NAME,
  PXE_KERNEL,
  waitScript,
} from "./render.ts";
import type { Purpose, Signer } from "./sign.ts";
import { expandKernelArg, TemplateError } from "./template.ts";
import { type TemplateValues, templateValues } from "./values.ts";

export interface BootSettings {
  /** Base URL machines reach Kindling at, e.g. http://10.0.0.1:8080 */
  server: string;
  defaultProfile: string | undefined;
  retrySeconds: number;
  signedUrlSeconds: number;
  /** New machines one client address may add per minute. */
  discoveriesPerMinute: number;
}

/** A script (or an honest error) for one `/ipxe` request, with what the log line and event need. */
export interface IpxeAnswer {
  status: 200 | 400 | 404 | 500;
  body: string;
  mac?: string;
  profile?: string;
  outcome: "boot" | "local" | "wait" | "syncing" | "bad-request" | "missing-profile" | "render-error" | "too-many-new";
}

/** Query keys `/boot.ipxe` sends that are identity, not labels. */
const IDENTITY_KEYS = new Set(["mac", "uuid", "serial", "hostname", "arch", "platform"]);

/** The boot domain behind `/ipxe`: look the machine up, record it, decide, render. */
export class BootService {
  private readonly discoveries: KeyedRate;

  /** `requests` logs and records `/ipxe` requests, counting repeats into a bounded number of events and lines. */
  constructor(
    private readonly store: Store,
    private readonly settings: BootSettings,
    private readonly releases: ReleaseSource,
    private readonly signer: Signer,
    private readonly requests: CoalescedLog,
  ) {
    this.discoveries = new KeyedRate(settings.discoveriesPerMinute);
  }

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
    // Anyone can invent MACs: a client adding machines faster than a rack powers on is told to come back.
    if (!this.store.machines.get(mac) && !this.discoveries.take(ip ?? "")) {
      this.requests.record({
        kind: "ipxe.refused",
        client: ip,
        reason: "too-many-new",
        detail: { ip, mac, perMinute: this.settings.discoveriesPerMinute },
        message: "too many new machines from one address",
        level: "warn",
      });
      const reason = "too many new machines from this address";
      return {
        status: 200,
        body: waitScript(reason, this.settings.retrySeconds, this.settings.server),
        mac,
        outcome: "too-many-new",
      };
    }
    const { machine, created, evicted } = this.store.history.recordSighting({
      mac,
      uuid: normalizeUuid(query.uuid),
      // As long as an operator may type (MachineCreateSchema): the URL could carry kilobytes.
      serial: query.serial?.trim().slice(0, 128) || undefined,
      arch: normalizeArch(query.arch),
      // Anyone on the boot network can send this: only a well-formed hostname is kept.
      hostname: HostnameSchema.safeParse(query.hostname?.trim()).data,
    });
    if (created)
      this.store.history.append({
        mac,
        kind: "machine.discovered",
        detail: { via: "ipxe", arch: machine.arch, uuid: machine.uuid },
      });
    if (evicted > 0)
      this.requests.record({
        kind: "machines.evicted",
        client: ip,
        reason: "max-discovered",
        detail: { evicted, ip },
        message: "discovered-machine cap reached: forgot the least recently seen untouched ones (boot.maxDiscovered)",
        level: "warn",
      });

    const { chosen, profile, groupMetadata } = this.resolve(machine, query);
    const plan = planIpxe({ machine, chosen, profile });
    const answer = this.answer(plan, machine, query.platform, groupMetadata);
    this.requests.record({
      kind: "ipxe.request",
      client: ip,
      mac,
      reason: `${answer.outcome} ${answer.profile ?? ""}`,
      detail: {
        profile: answer.profile ?? null,
        source: chosen?.source ?? null,
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
   * The profile a machine boots and why: its own, else the most specific matching group, else the default.
   * A group's metadata fills template values under the machine's own (matchbox semantics).
   */
  resolve(
    machine: Machine,
    query: Record<string, string> = {},
  ): {
    chosen: ReturnType<typeof chooseProfile>;
    profile: Profile | undefined;
    groupMetadata: Record<string, unknown>;
  } {
    const chosen = chooseProfile({
      machineProfile: machine.profile,
      groups: this.store.groups.list(),
      labels: this.labelsFor(machine, query),
      defaultProfile: this.settings.defaultProfile,
    });
    return {
      chosen,
      profile: chosen && this.store.profiles.get(chosen.profile),
      groupMetadata: chosen?.group?.metadata ?? {},
    };
  }

  /** Signed URL for a per-machine endpoint (`/ignition`, `/report`, `/metadata`). */
  signedUrl(path: string, purpose: Purpose, mac: string): string {
    return `${this.settings.server}${path}?${this.signer.query(purpose, mac, this.settings.signedUrlSeconds)}`;
  }

  /** Template values for a machine under a profile, with its signed URLs. */
  valuesFor(
    machine: Machine,
    profile: Profile,
    opts: { flatcarVersion?: string; groupMetadata?: Record<string, unknown> } = {},
  ): TemplateValues {
    const url = (path: string, purpose: Purpose) => this.signedUrl(path, purpose, machine.mac);
    return templateValues({
      machine,
      profile,
      server: this.settings.server,
      flatcarVersion: opts.flatcarVersion,
      extraMetadata: opts.groupMetadata ?? {},
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

  private answer(
    plan: ReturnType<typeof planIpxe>,
    machine: Machine,
    platform: string | undefined,
    groupMetadata: Record<string, unknown>,
  ): Omit<IpxeAnswer, "mac"> {
    const { server, retrySeconds } = this.settings;
    switch (plan.kind) {
      case "wait":
        return { status: 200, body: waitScript(plan.reason, retrySeconds, server), outcome: "wait" };
      case "local":
        return {
          status: 200,
          body: localBootScript(plan.reason),
          outcome: "local",
          ...(machine.profile ? { profile: machine.profile } : {}),
        };
      case "missing-profile":
        // Logged (as a warning) with the request: a client can repeat it at any rate.
        return {
          status: 404,
          body: `profile ${plan.profile} not found\n`,
          profile: plan.profile,
          outcome: "missing-profile",
        };
      case "boot":
        try {
          return this.bootAnswer(plan.profile, machine, platform, groupMetadata);
        } catch (err) {
          if (!(err instanceof TemplateError)) throw err;
          this.requests.record({
            kind: "render.failed",
            client: undefined,
            mac: machine.mac,
            reason: plan.profile.name,
            detail: { profile: plan.profile.name, what: "kernel args", error: err.message },
            message: "kernel arguments failed to render",
            level: "error",
          });
          return {
            status: 500,
            body: `render failed: ${err.message}\n`,
            profile: plan.profile.name,
            outcome: "render-error",
          };
        }
    }
  }

  private bootAnswer(
    profile: Profile,
    machine: Machine,
    platform: string | undefined,
    groupMetadata: Record<string, unknown>,
  ): Omit<IpxeAnswer, "mac"> {
    const { server, retrySeconds } = this.settings;
    const ignitionUrl = profile.ignition ? this.signedUrl("/ignition", "ignition", machine.mac) : undefined;
    if (profile.flatcar) {
      const release = this.releases.ensure(profile.flatcar);
      if (release.state !== "ready") {
        const reason = `${release.state === "syncing" ? "waiting for" : "cannot mirror"} Flatcar ${profile.flatcar.channel} ${profile.flatcar.version}: ${release.reason}`;
        return {
          status: 200,
          body: waitScript(reason, retrySeconds, server),
          profile: profile.name,
          outcome: "syncing",
        };
      }
      const values = this.valuesFor(machine, profile, { flatcarVersion: release.version, groupMetadata });
      const base = `${server}${release.basePath}/${release.version}`;
      const args = flatcarKernelArgs({
        initrdName: PXE_INITRD_NAME,
        ignitionUrl,
        consoles: FLATCAR_CONSOLE_ARGS,
        extra: profile.kernelArgs.map((a) => expandKernelArg(a, values)),
      });
      const body = kernelScript({
        comment: `${machine.mac} profile ${profile.name}: Flatcar ${profile.flatcar.channel} ${release.version} ${profile.flatcar.arch} (${platform ?? "unknown"} firmware)`,
        kernel: `${base}/${PXE_KERNEL}`,
        initrds: [{ name: PXE_INITRD_NAME, url: `${base}/${PXE_INITRD_NAME}` }],
        args,
      });
      return { status: 200, body, profile: profile.name, outcome: "boot" };
    }
    if (profile.boot) {
      const values = this.valuesFor(machine, profile, { groupMetadata });
      const url = (u: string) => {
        const expanded = expandKernelArg(u, values);
        return /^[a-z]+:\/\//i.test(expanded) ? expanded : `${server}${expanded.startsWith("/") ? "" : "/"}${expanded}`;
      };
      const initrds = profile.boot.initrd.map((u) => ({ name: initrdName(u), url: url(u) }));
      const args = rawKernelArgs({
        initrdNames: initrds.map((i) => i.name),
        ignitionUrl,
        args: [...profile.boot.args, ...profile.kernelArgs].map((a) => expandKernelArg(a, values)),
      });
      const body = kernelScript({
        comment: `${machine.mac} profile ${profile.name}`,
        kernel: url(profile.boot.kernel),
        initrds,
        args,
      });
      return { status: 200, body, profile: profile.name, outcome: "boot" };
    }
    // planIpxe sends localDisk profiles to "local"; a profile validated by its schema has one of the three.
    throw new Error(`profile ${profile.name} has no boot target`);
  }
}
