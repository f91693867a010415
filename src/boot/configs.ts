import { maxIgnitionSpec } from "../flatcar/ignition-spec.ts";
import { boardOf } from "../flatcar/release.ts";
import { formatDiagnostic, IgnitionError, renderIgnition, validateIgnition } from "../ignition/index.ts";
import type { Machine } from "../model/machine.ts";
import type { Profile } from "../model/profile.ts";
import { installerIgnition, reportUnit, withReportUnit } from "./installer.ts";
import type { ReleaseSource } from "./releases.ts";
import type { BootService } from "./service.ts";
import { TemplateError } from "./template.ts";

/** `boot`: what the network-booted system asks for; `final`: the installed system's config (install profiles). */
export type Stage = "boot" | "final";

export type ConfigAnswer =
  | {
      ok: true;
      config: Record<string, unknown>;
      spec: string;
      kind: "installer" | "installed" | "live" | "raw";
      profile: string;
    }
  | { ok: false; status: 404 | 500 | 503; reason: string; profile?: string };

/**
 * The Ignition a machine gets. Install profiles: at `boot` a Kindling-written installer (flatcar-install
 * against the mirror, reports, reboot), at `final` the profile's own config plus a first-boot report. Live
 * Flatcar profiles: the profile's config plus a `booted` report. Raw-boot profiles: the profile's config as is.
 */
export class IgnitionConfigs {
  constructor(
    private readonly boot: BootService,
    private readonly releases: ReleaseSource,
    private readonly server: string,
  ) {}

  /** `group`: the group a signed URL says the machine booted through (BootService.resolve). */
  forMachine(machine: Machine, stage: Stage, profileOverride?: Profile, group?: string): ConfigAnswer {
    const resolved = this.boot.resolve(machine, {}, group);
    const profile = profileOverride ?? resolved.profile;
    if (!profile) return { ok: false, status: 404, reason: `${machine.mac} has no profile` };
    const fail = (status: 404 | 500 | 503, reason: string): ConfigAnswer => ({
      ok: false,
      status,
      reason,
      profile: profile.name,
    });
    if (stage === "final" && !profile.install) return fail(404, `profile ${profile.name} does not install to disk`);

    let version: string | undefined;
    let basePath = "";
    if (profile.flatcar) {
      const release = this.releases.ensure(profile.flatcar);
      if (release.state !== "ready")
        return fail(
          503,
          `Flatcar ${profile.flatcar.channel} ${profile.flatcar.version} is not mirrored yet: ${release.reason}`,
        );
      version = release.version;
      basePath = release.basePath;
    }
    try {
      const values = this.boot.valuesFor(machine, profile, {
        flatcarVersion: version,
        group: resolved.chosen?.group,
      });
      if (profile.flatcar && profile.install && stage === "boot") {
        const config = installerIgnition({
          mac: machine.mac,
          channel: profile.flatcar.channel,
          version: version!,
          board: boardOf(profile.flatcar.arch),
          baseUrl: `${this.server}${basePath}`,
          disk: profile.install.disk,
          oem: profile.install.oem,
          extraArgs: profile.install.extraArgs,
          finalUrl: values.urls.final!,
          reportUrl: values.urls.report!,
        });
        return this.checked(config, "installer", profile);
      }
      let config: Record<string, unknown>;
      let spec: string;
      if (profile.ignition) {
        const rendered = renderIgnition({
          source: profile.ignition,
          values,
          ...(version ? { flatcarVersion: version } : {}),
        });
        config = rendered.config;
        spec = rendered.spec;
      } else if (version) {
        spec = maxIgnitionSpec(version) ?? "3.3.0";
        config = { ignition: { version: spec } };
      } else {
        return fail(404, `profile ${profile.name} has no Ignition config`);
      }
      if (!profile.flatcar) return { ok: true, config, spec, kind: "raw", profile: profile.name };
      const withReport = withReportUnit(
        config,
        reportUnit(profile.install ? "first-boot" : "booted", values.urls.report!),
      );
      return this.checked(withReport, profile.install ? "installed" : "live", profile);
    } catch (err) {
      if (err instanceof IgnitionError || err instanceof TemplateError) return fail(500, err.message);
      throw err;
    }
  }

  /** Kindling's own additions pass the same validator as operators' configs before anything is served. */
  private checked(
    config: Record<string, unknown>,
    kind: "installer" | "installed" | "live",
    profile: Profile,
  ): ConfigAnswer {
    const errors = validateIgnition(config).filter((d) => d.severity === "error");
    if (errors.length > 0)
      return { ok: false, status: 500, reason: errors.map(formatDiagnostic).join("; "), profile: profile.name };
    return {
      ok: true,
      config,
      spec: String((config.ignition as { version: string }).version),
      kind,
      profile: profile.name,
    };
  }
}
