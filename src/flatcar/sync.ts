import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "../log.ts";
import type { EventSink } from "../model/event.ts";
import { completeRelease } from "./complete.ts";
import type { FlatcarConfig } from "./config.ts";
import { downloadTo, fetchSmall, MissingFileError } from "./download.ts";
import { InlineCheck } from "./inline-check.ts";
import type { Manifest, MirrorLayout } from "./layout.ts";
import { adoptPart, claimWriter, markFilling } from "./partial.ts";
import {
  boardOf,
  originBase,
  parseVersionTxt,
  type Release,
  releaseFiles,
  signatureNames,
  upstreamChannel,
  VERSION_TXT,
} from "./release.ts";
import type { SigningKey } from "./signing-key.ts";
import type { SingleFlight } from "./single-flight.ts";
import { placeVerified, recheck, type Verified, writeAtomic } from "./verified-file.ts";

export interface Progress {
  file: string;
  bytes: number;
  total?: number | undefined;
}

export interface SyncDeps {
  layout: MirrorLayout;
  config: FlatcarConfig;
  signingKey: SigningKey;
  fetch: typeof fetch;
  events: EventSink;
  log: Logger;
  /** Files being fetched, one fetch per destination: two syncs naming one release share them. */
  files: SingleFlight<Verified>;
}

/** `<channel>/<board>/<version as requested>`: one sync runs per key. */
export function syncKey(r: Release): string {
  return `${r.channel}/${boardOf(r.arch)}/${r.version}`;
}

/**
 * Downloads a release from the origin and verifies every file before it takes its final name (`current`
 * is resolved at the origin first); a release already complete only moves the `current` pointer. Every
 * outcome is an event.
 */
export async function syncRelease(
  d: SyncDeps,
  r: Release,
  progress: (p: Progress) => void,
): Promise<{ version: string }> {
  const { layout } = d;
  const board = boardOf(r.arch);
  const started = Date.now();
  const base = originBase(d.config.origin, r.channel, r.arch);
  const detail = { channel: r.channel, board, requested: r.version, origin: base };
  d.events.append({ kind: "flatcar.sync.started", detail });
  d.log.info(detail, "flatcar sync started");
  let version = r.version;
  try {
    await claimWriter(layout.dir);
    let versionTxt: Uint8Array | null = null;
    if (r.version === "current") {
      const url = `${base}/${upstreamChannel(r.channel).currentDir}/${VERSION_TXT}`;
      versionTxt = await fetchSmall(d.fetch, url);
      if (!versionTxt) throw new MissingFileError(url);
      version = parseVersionTxt(Buffer.from(versionTxt).toString("utf8"));
    }
    const dir = layout.releaseDir(r.channel, board, version);
    if (await layout.manifest(r.channel, board, version)) {
      // Verified when it was mirrored: only the current pointer may need to move.
      if (r.version === "current")
        await writeAtomic(layout.currentFile(r.channel, board), await readFile(join(dir, VERSION_TXT)));
      d.events.append({
        kind: "flatcar.sync.done",
        detail: {
          channel: r.channel,
          board,
          version,
          bytes: 0,
          seconds: (Date.now() - started) / 1000,
          alreadyMirrored: true,
        },
      });
      return { version };
    }
    await mkdir(dir, { recursive: true });
    const filled = await markFilling(dir);
    const files: Manifest["files"] = [];
    let txt: string;
    try {
      for (const name of releaseFiles(d.config.oems)) {
        const dest = join(dir, name);
        const got = await d.files.run(dest, () => fetchVerified(d, `${base}/${version}`, dest, name, progress));
        files.push({ name, ...got });
      }
      versionTxt ??= await fetchSmall(d.fetch, `${base}/${version}/${VERSION_TXT}`);
      const manifest = { channel: r.channel, board, version, files, source: base };
      txt = await completeRelease(layout.dir, dir, manifest, versionTxt, d.log);
    } finally {
      await filled();
    }
    if (r.version === "current") await writeAtomic(layout.currentFile(r.channel, board), txt);
    const bytes = files.reduce((n, f) => n + f.bytes, 0);
    const done = { channel: r.channel, board, version, bytes, seconds: (Date.now() - started) / 1000 };
    d.events.append({ kind: "flatcar.sync.done", detail: done });
    d.log.info(done, "flatcar sync done");
    return { version };
  } catch (err) {
    const reason = (err as Error).message;
    d.events.append({ kind: "flatcar.sync.failed", detail: { channel: r.channel, board, version, reason } });
    d.log.warn({ channel: r.channel, board, version, reason }, "flatcar sync failed");
    throw err;
  }
}

/**
 * One file and its signature from `baseUrl`, verified while it downloads. A verified copy already present is
 * reused, and a `.part` a stopped sync left is resumed.
 */
async function fetchVerified(
  d: SyncDeps,
  baseUrl: string,
  dest: string,
  name: string,
  progress: (p: Progress) => void,
): Promise<Verified> {
  const existing = await recheck(d.signingKey, dest, name, d.log);
  if (existing) return existing;
  let sig: Uint8Array | null = null;
  for (const sigName of signatureNames(name)) {
    sig = await fetchSmall(d.fetch, `${baseUrl}/${sigName}`);
    if (sig) break;
  }
  if (!sig) throw new MissingFileError(`${baseUrl}/${name}.sig (signature of ${name})`);
  const adopted = await adoptPart(d.layout.dir, dest);
  if (adopted > 0) d.log.info({ file: dest, bytes: adopted }, "resuming what a stopped sync downloaded");
  const inline = new InlineCheck(d.signingKey, sig, name);
  return placeVerified(d.signingKey, dest, name, sig, async (temp) => {
    try {
      await downloadTo(`${baseUrl}/${name}`, temp, {
        fetch: d.fetch,
        attempts: d.config.attempts,
        onProgress: (b, total) => progress({ file: name, bytes: b, total }),
        sink: (chunk, at) => inline.write(chunk, at),
      });
      return await inline.finish();
    } catch (err) {
      inline.abandon();
      throw err;
    }
  });
}
