import { boardOf } from "../flatcar/release.ts";
import type { TemplateValues as EngineValues } from "../ignition/template.ts";
import type { Machine } from "../model/machine.ts";
import type { Profile } from "../model/profile.ts";

/** Per-machine template values shared by kernel args and Ignition (documented in docs/ignition.md). */
export interface TemplateValues extends EngineValues {
  mac: string;
  hostname: string;
  uuid: string;
  serial: string;
  arch: string;
  ip: string;
  labels: Record<string, string>;
  metadata: EngineValues;
  vars: EngineValues;
  /** Base URL machines reach Kindling at, e.g. http://10.0.0.1:8080 */
  server: string;
  flatcar: { channel: string; version: string; board: string };
  /** Signed per-machine URLs (ignition, report); filled by the boot service. */
  urls: Record<string, string>;
}

/**
 * Values a machine's templates see. Identity fields the machine never reported are empty strings rather than
 * missing, so `hostname={{ hostname }}` renders for a machine without one; metadata and vars keys that a
 * template names but nobody set are still errors.
 */
export function templateValues(input: {
  machine: Machine;
  profile: Profile;
  server: string;
  flatcarVersion?: string | undefined;
  urls?: Record<string, string>;
  extraMetadata?: Record<string, unknown>;
}): TemplateValues {
  const { machine: m, profile: p } = input;
  const arch = m.arch ?? p.flatcar?.arch ?? "amd64";
  return {
    mac: m.mac,
    hostname: m.hostname ?? "",
    uuid: m.uuid ?? "",
    serial: m.serial ?? "",
    arch,
    ip: m.ip ?? "",
    labels: m.labels,
    // Metadata and vars arrive as JSON (API) or YAML (profiles): every value is one the engine takes.
    metadata: { ...input.extraMetadata, ...m.metadata } as EngineValues,
    vars: p.vars as EngineValues,
    server: input.server,
    flatcar: {
      channel: p.flatcar?.channel ?? "",
      version: input.flatcarVersion ?? p.flatcar?.version ?? "",
      board: boardOf(p.flatcar?.arch ?? arch),
    },
    urls: input.urls ?? {},
  };
}
