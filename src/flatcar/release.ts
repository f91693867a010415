import { z } from "zod";
import { type Arch, ArchSchema } from "../model/machine.ts";
import { ChannelSchema, VersionSchema } from "../model/profile.ts";

export type { Arch };

/** A concrete release such as `4593.2.5`. */
export const ConcreteVersionSchema = z.string().regex(/^\d+\.\d+\.\d+$/, "must be a release such as 4593.2.5");

export const ReleaseRequestSchema = z.strictObject({
  channel: ChannelSchema,
  version: VersionSchema.default("current"),
  arch: ArchSchema.default("amd64"),
});
export type ReleaseRequest = z.input<typeof ReleaseRequestSchema>;
export type Release = z.output<typeof ReleaseRequestSchema>;

export const PXE_KERNEL = "flatcar_production_pxe.vmlinuz";
export const PXE_INITRD = "flatcar_production_pxe_image.cpio.gz";
export const IMAGE = "flatcar_production_image.bin.bz2";
/** Upstream the PXE kernel is a link to this file, so its signature may only exist under this name. */
export const KERNEL_SIG_FALLBACK = "flatcar_production_image.vmlinuz.sig";
export const VERSION_TXT = "version.txt";

export const boardOf = (arch: Arch): string => `${arch}-usr`;

export function oemImage(oem: string): string {
  return `flatcar_production_${oem}_image.bin.bz2`;
}

/** Signed files of a release, in download order (small boot files first so PXE can start soonest). */
export function releaseFiles(oems: readonly string[]): string[] {
  return [PXE_KERNEL, PXE_INITRD, IMAGE, ...oems.map(oemImage)];
}

/** Other names a file's detached signature is published under when `<file>.sig` is missing. */
export function signatureNames(file: string): string[] {
  return file === PXE_KERNEL ? [`${file}.sig`, KERNEL_SIG_FALLBACK] : [`${file}.sig`];
}

/**
 * Upstream publishes LTS streams under the `lts` channel, each with its own `current-YYYY` pointer;
 * `lts` alone follows the newest stream through `current`.
 */
export function upstreamChannel(channel: string): { channel: string; currentDir: string } {
  const m = /^lts-(\d{4})$/.exec(channel);
  return m ? { channel: "lts", currentDir: `current-${m[1]}` } : { channel, currentDir: "current" };
}

/** Base URL of one board of a channel on the origin, without a trailing slash. */
export function originBase(template: string, channel: string, arch: Arch): string {
  const up = upstreamChannel(channel);
  return template.replaceAll("{channel}", up.channel).replaceAll("{board}", boardOf(arch)).replace(/\/+$/, "");
}

/** Parses `version.txt` (shell-style KEY=value lines); returns FLATCAR_VERSION. */
export function parseVersionTxt(text: string): string {
  const vars = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*([A-Z_][A-Z0-9_]*)=["']?([^"'\s]*)["']?\s*$/.exec(line);
    if (m) vars.set(m[1]!, m[2]!);
  }
  const version = vars.get("FLATCAR_VERSION") ?? vars.get("COREOS_VERSION");
  if (!version) throw new Error("version.txt has no FLATCAR_VERSION");
  const parsed = ConcreteVersionSchema.safeParse(version);
  if (!parsed.success) throw new Error(`version.txt: FLATCAR_VERSION=${version} is not a release number`);
  return parsed.data;
}

/** Numeric order of release numbers (4593.2.5 > 4593.2.10 is false). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
