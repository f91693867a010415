import { copyFile, mkdir, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "../log.ts";
import type { EventSink } from "../model/event.ts";
import { completeRelease } from "./complete.ts";
import type { Manifest, MirrorLayout } from "./layout.ts";
import { claimWriter, markFilling } from "./partial.ts";
import {
  type Arch,
  boardOf,
  ConcreteVersionSchema,
  compareVersions,
  IMAGE,
  PXE_INITRD,
  PXE_KERNEL,
  parseVersionTxt,
  ReleaseRequestSchema,
  signatureNames,
  VERSION_TXT,
} from "./release.ts";
import type { SigningKey } from "./signing-key.ts";
import { placeVerified, writeAtomic } from "./verified-file.ts";

export interface ImportDeps {
  layout: MirrorLayout;
  signingKey: SigningKey;
  events: EventSink;
  log: Logger;
}

const OEM_IMAGE = /^flatcar_production_[a-z0-9_]+_image\.bin\.bz2$/;

/**
 * Takes release files copied by hand (USB stick, air gap) from `dir` and verifies them exactly like a
 * download. The version comes from `dir/version.txt` unless given; `current` moves to it when newer.
 */
export async function importRelease(
  d: ImportDeps,
  dir: string,
  target: { channel: string; arch?: Arch; version?: string },
): Promise<{ version: string; files: string[] }> {
  const { layout } = d;
  const r = ReleaseRequestSchema.parse({
    channel: target.channel,
    arch: target.arch ?? "amd64",
    version: target.version ?? "current",
  });
  const board = boardOf(r.arch);
  const localTxt = await readFile(join(dir, VERSION_TXT)).catch(() => null);
  const version = r.version !== "current" ? r.version : localTxt ? parseVersionTxt(localTxt.toString("utf8")) : null;
  if (!version) throw new Error(`${dir}: no ${VERSION_TXT}; give the version explicitly`);
  ConcreteVersionSchema.parse(version);
  const detail = { channel: r.channel, board, version, source: `import ${dir}` };
  d.events.append({ kind: "flatcar.sync.started", detail });
  let filled: (() => Promise<void>) | undefined;
  try {
    await claimWriter(layout.dir);
    const present = new Set(await readdir(dir));
    for (const required of [PXE_KERNEL, PXE_INITRD, IMAGE]) {
      if (!present.has(required)) throw new Error(`${dir}: ${required} is missing`);
    }
    const oems = [...present].filter((f) => OEM_IMAGE.test(f) && f !== IMAGE);
    const names = [PXE_KERNEL, PXE_INITRD, IMAGE, ...oems];
    const into = layout.releaseDir(r.channel, board, version);
    await mkdir(into, { recursive: true });
    filled = await markFilling(into);
    const files: Manifest["files"] = [];
    for (const name of names) {
      const sigName = signatureNames(name).find((s) => present.has(s));
      if (!sigName) throw new Error(`${dir}: ${name}.sig is missing`);
      const sig = new Uint8Array(await readFile(join(dir, sigName)));
      const got = await placeVerified(d.signingKey, join(into, name), name, sig, async (temp) => {
        await copyFile(join(dir, name), temp);
        return null;
      });
      files.push({ name, ...got });
    }
    const manifest = { channel: r.channel, board, version, files, source: `import ${dir}` };
    const txt = await completeRelease(layout.dir, into, manifest, localTxt, d.log);
    const current = layout.currentVersion(r.channel, r.arch);
    if (!current || compareVersions(version, current) > 0) await writeAtomic(layout.currentFile(r.channel, board), txt);
    d.events.append({
      kind: "flatcar.sync.done",
      detail: { ...detail, bytes: files.reduce((n, f) => n + f.bytes, 0) },
    });
    return { version, files: names };
  } catch (err) {
    d.events.append({ kind: "flatcar.sync.failed", detail: { ...detail, reason: (err as Error).message } });
    throw err;
  } finally {
    await filled?.();
  }
}
