import { existsSync, readFileSync } from "node:fs";
import { copyFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "../log.ts";
import type { EventSink } from "../model/event.ts";
import type { FlatcarConfig } from "./config.ts";
import { downloadTo, fetchSmall, MissingFileError } from "./download.ts";
import { InlineCheck } from "./inline-check.ts";
import { adoptPart, claimWriter, hasLiveWriter, markFilling, partName, removeStrays, tmpName } from "./partial.ts";
import {
  type Arch,
  boardOf,
  ConcreteVersionSchema,
  compareVersions,
  IMAGE,
  originBase,
  PXE_INITRD,
  PXE_KERNEL,
  parseVersionTxt,
  type Release,
  type ReleaseRequest,
  ReleaseRequestSchema,
  releaseFiles,
  signatureNames,
  upstreamChannel,
  VERSION_TXT,
} from "./release.ts";
import { SigningKey, VerificationError } from "./signing-key.ts";

/** Written last into a release directory: its presence means every file in it was verified. */
export const MANIFEST = "kindling-release.json";

export interface Progress {
  file: string;
  bytes: number;
  total?: number | undefined;
}
export interface SyncOptions {
  onProgress?: ((p: Progress) => void) | undefined;
}

export type EnsureResult =
  | { state: "ready"; version: string; basePath: string }
  | { state: "syncing" | "failed"; reason: string };

export interface Manifest {
  channel: string;
  board: string;
  version: string;
  files: { name: string; bytes: number; signedBy: string }[];
  verifiedAt: string;
  source: string;
}

export interface MirroredRelease extends Manifest {
  arch: Arch;
  current: boolean;
  bytes: number;
}

export interface MirrorStatus {
  releases: MirroredRelease[];
  syncing: { channel: string; board: string; version: string }[];
  failed: { channel: string; board: string; version: string; reason: string; at: string }[];
}

/** A release a profile pins; prune never removes it. */
export interface PinnedRelease {
  channel: string;
  version: string;
  arch?: Arch | undefined;
}

export interface MirrorOptions {
  /** Assets root (`<dataDir>/assets`); the mirror lives in its `flatcar/` folder. */
  root: string;
  config: FlatcarConfig;
  events: EventSink;
  log: Logger;
  fetch?: typeof fetch;
}

interface RunningSync {
  promise: Promise<{ version: string }>;
  listeners: Set<(p: Progress) => void>;
  /** The newest progress report, for whoever looks without having started the sync (the console). */
  latest?: Progress;
}

const ARCHES: readonly Arch[] = ["amd64", "arm64"];

/**
 * The verified local copy of Flatcar releases, laid out as the upstream release tree
 * (`flatcar/<channel>/<board>/<version>/<file>` plus `current/version.txt`) so `flatcar-install -b` reads it
 * unchanged. A file appears under its final name only after its signature checked out.
 */
export class Mirror {
  readonly dir: string;
  readonly signingKey: SigningKey;
  private readonly fetch: typeof fetch;
  private readonly syncs = new Map<string, RunningSync>();
  private readonly files = new Map<string, Promise<{ bytes: number; signedBy: string }>>();
  private readonly failures = new Map<string, { reason: string; at: number }>();

  constructor(private readonly opts: MirrorOptions) {
    this.dir = join(opts.root, "flatcar");
    this.fetch = opts.fetch ?? globalThis.fetch;
    this.signingKey = new SigningKey({
      file: opts.config.signingKey,
      url: opts.config.signingKeyUrl,
      fingerprint: opts.config.signingFingerprint,
      cacheFile: join(this.dir, "signing-key.asc"),
      fetch: this.fetch,
      log: opts.log,
    });
  }

  private boardDir(channel: string, board: string): string {
    return join(this.dir, channel, board);
  }

  private releaseDir(channel: string, board: string, version: string): string {
    return join(this.dir, channel, board, version);
  }

  private currentFile(channel: string, board: string): string {
    return join(this.dir, channel, board, "current", VERSION_TXT);
  }

  /** The mirrored `current` of a channel, if a verified sync ever resolved it. */
  currentVersion(channel: string, arch: Arch): string | null {
    try {
      return parseVersionTxt(readFileSync(this.currentFile(channel, boardOf(arch)), "utf8"));
    } catch {
      return null;
    }
  }

  isMirrored(channel: string, arch: Arch, version: string): boolean {
    return existsSync(join(this.releaseDir(channel, boardOf(arch), version), MANIFEST));
  }

  /** Non-blocking: the verified release if mirrored; otherwise starts a background sync (once) and says so. */
  ensure(req: ReleaseRequest): EnsureResult {
    const parsed = ReleaseRequestSchema.safeParse(req);
    if (!parsed.success) return { state: "failed", reason: `invalid release: ${parsed.error.issues[0]?.message}` };
    const r = parsed.data;
    const board = boardOf(r.arch);
    const version = r.version === "current" ? this.currentVersion(r.channel, r.arch) : r.version;
    if (version && this.isMirrored(r.channel, r.arch, version)) {
      return { state: "ready", version, basePath: `/assets/flatcar/${r.channel}/${board}` };
    }
    const key = syncKey(r);
    const label = `Flatcar ${r.channel} ${board} ${r.version}`;
    if (this.syncs.has(key)) return { state: "syncing", reason: `${label} is being downloaded and verified` };
    const failure = this.failures.get(key);
    if (failure && Date.now() - failure.at < this.opts.config.retryFailedSeconds * 1000) {
      return { state: "failed", reason: `${label}: ${failure.reason}` };
    }
    this.sync(r).catch(() => {
      // Recorded in failures and the event log; the next ensure() after the back-off tries again.
    });
    return { state: "syncing", reason: `${label} is being downloaded and verified` };
  }

  /** Downloads and verifies a release (single-flight per channel/board/version); resolves the mirrored version. */
  sync(req: ReleaseRequest, opts: SyncOptions = {}): Promise<{ version: string }> {
    const r = ReleaseRequestSchema.parse(req);
    const key = syncKey(r);
    let running = this.syncs.get(key);
    if (!running) {
      const listeners = new Set<(p: Progress) => void>();
      const entry: RunningSync = { promise: Promise.resolve({ version: r.version }), listeners };
      entry.promise = this.runSync(r, (p) => {
        entry.latest = p;
        listeners.forEach((l) => l(p));
      }).finally(() => this.syncs.delete(key));
      running = entry;
      this.syncs.set(key, running);
    }
    if (opts.onProgress) running.listeners.add(opts.onProgress);
    return running.promise;
  }

  /** Newest progress of every running sync, keyed `<channel>/<board>/<version as requested>` like `list().syncing`. */
  progress(): Map<string, Progress> {
    const out = new Map<string, Progress>();
    for (const [key, s] of this.syncs) if (s.latest) out.set(key, s.latest);
    return out;
  }

  private async runSync(r: Release, progress: (p: Progress) => void): Promise<{ version: string }> {
    const board = boardOf(r.arch);
    const key = syncKey(r);
    const started = Date.now();
    const base = originBase(this.opts.config.origin, r.channel, r.arch);
    const detail = { channel: r.channel, board, requested: r.version, origin: base };
    this.opts.events.append({ kind: "flatcar.sync.started", detail });
    this.opts.log.info(detail, "flatcar sync started");
    let version = r.version;
    try {
      await claimWriter(this.dir);
      let versionTxt: Uint8Array | null = null;
      if (r.version === "current") {
        const url = `${base}/${upstreamChannel(r.channel).currentDir}/${VERSION_TXT}`;
        versionTxt = await fetchSmall(this.fetch, url);
        if (!versionTxt) throw new MissingFileError(url);
        version = parseVersionTxt(Buffer.from(versionTxt).toString("utf8"));
      }
      const dir = this.releaseDir(r.channel, board, version);
      const complete = await readManifest(join(dir, MANIFEST));
      if (complete) {
        // Verified when it was mirrored: only the current pointer may need to move.
        if (r.version === "current")
          await writeAtomic(this.currentFile(r.channel, board), await readFile(join(dir, VERSION_TXT)));
        this.failures.delete(key);
        this.opts.events.append({
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
        for (const name of releaseFiles(this.opts.config.oems)) {
          const got = await this.fetchVerified(`${base}/${version}`, dir, name, progress);
          files.push({ name, ...got });
        }
        versionTxt ??= await fetchSmall(this.fetch, `${base}/${version}/${VERSION_TXT}`);
        txt = await this.finishRelease(dir, { channel: r.channel, board, version, files, source: base }, versionTxt);
      } finally {
        await filled();
      }
      if (r.version === "current") await writeAtomic(this.currentFile(r.channel, board), txt);
      this.failures.delete(key);
      const bytes = files.reduce((n, f) => n + f.bytes, 0);
      const done = { channel: r.channel, board, version, bytes, seconds: (Date.now() - started) / 1000 };
      this.opts.events.append({ kind: "flatcar.sync.done", detail: done });
      this.opts.log.info(done, "flatcar sync done");
      return { version };
    } catch (err) {
      const reason = (err as Error).message;
      this.failures.set(key, { reason, at: Date.now() });
      this.opts.events.append({ kind: "flatcar.sync.failed", detail: { channel: r.channel, board, version, reason } });
      this.opts.log.warn({ channel: r.channel, board, version, reason }, "flatcar sync failed");
      throw err;
    }
  }

  /** Writes version.txt and the manifest; the manifest goes last because it marks the release complete. */
  private async finishRelease(
    dir: string,
    m: Omit<Manifest, "verifiedAt">,
    versionTxt: Uint8Array | null,
  ): Promise<string> {
    // version.txt is unsigned metadata: a missing or odd one is replaced rather than failing verified files.
    let txt = versionTxt ? Buffer.from(versionTxt).toString("utf8") : "";
    const named = (() => {
      try {
        return parseVersionTxt(txt);
      } catch {
        return null;
      }
    })();
    if (named !== m.version) {
      if (versionTxt)
        this.opts.log.warn(
          { version: m.version, named },
          "release version.txt does not name this release; writing our own",
        );
      txt = `FLATCAR_VERSION=${m.version}\n`;
    }
    await writeAtomic(join(dir, VERSION_TXT), txt);
    const manifest: Manifest = { ...m, verifiedAt: new Date().toISOString() };
    await writeAtomic(join(dir, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
    await removeStrays(this.dir, dir);
    return txt;
  }

  /** One file and its signature, single-flight per destination; a verified file already present is reused. */
  private fetchVerified(baseUrl: string, dir: string, name: string, progress: (p: Progress) => void) {
    const dest = join(dir, name);
    let p = this.files.get(dest);
    if (!p) {
      p = this.downloadVerified(baseUrl, dest, name, progress).finally(() => this.files.delete(dest));
      this.files.set(dest, p);
    }
    return p;
  }

  private async downloadVerified(baseUrl: string, dest: string, name: string, progress: (p: Progress) => void) {
    const existing = await this.recheck(dest, name);
    if (existing) return existing;
    let sig: Uint8Array | null = null;
    for (const sigName of signatureNames(name)) {
      sig = await fetchSmall(this.fetch, `${baseUrl}/${sigName}`);
      if (sig) break;
    }
    if (!sig) throw new MissingFileError(`${baseUrl}/${name}.sig (signature of ${name})`);
    const temp = partName(dest);
    const adopted = await adoptPart(this.dir, dest);
    if (adopted > 0) this.opts.log.info({ file: dest, bytes: adopted }, "resuming what a stopped sync downloaded");
    const inline = new InlineCheck(this.signingKey, sig, name);
    try {
      const { bytes } = await downloadTo(`${baseUrl}/${name}`, temp, {
        fetch: this.fetch,
        attempts: this.opts.config.attempts,
        onProgress: (b, total) => progress({ file: name, bytes: b, total }),
        sink: (chunk, at) => inline.write(chunk, at),
      });
      const { keyId } = (await inline.finish()) ?? (await this.signingKey.verifyFile(temp, sig, name));
      await writeAtomic(`${dest}.sig`, sig);
      await rename(temp, dest);
      return { bytes, signedBy: keyId };
    } catch (err) {
      inline.abandon();
      await rm(temp, { force: true });
      throw err;
    }
  }

  /**
   * A file left by an earlier sync that stopped before its manifest: checked again against the signature
   * stored beside it (cheaper than downloading again); anything that does not verify is removed.
   */
  private async recheck(dest: string, name: string): Promise<{ bytes: number; signedBy: string } | null> {
    const [s, sig] = await Promise.all([stat(dest).catch(() => null), readFile(`${dest}.sig`).catch(() => null)]);
    if (!s || !sig) return null;
    try {
      const { keyId } = await this.signingKey.verifyFile(dest, new Uint8Array(sig), name);
      return { bytes: s.size, signedBy: keyId };
    } catch (err) {
      // Only bytes that contradict their signature are thrown away; a key that cannot be had is not the file's fault.
      if (!(err instanceof VerificationError && err.kind === "signature")) throw err;
      this.opts.log.warn({ file: dest, err: err.message }, "mirrored file no longer verifies, fetching it again");
      await rm(dest, { force: true });
      return null;
    }
  }

  /**
   * Takes release files copied by hand (USB stick, air gap) from `dir` and verifies them exactly like a
   * download. The version comes from `dir/version.txt` unless given; `current` moves to it when newer.
   */
  async import(
    dir: string,
    target: { channel: string; arch?: Arch; version?: string },
  ): Promise<{ version: string; files: string[] }> {
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
    this.opts.events.append({ kind: "flatcar.sync.started", detail });
    let filled: (() => Promise<void>) | undefined;
    try {
      await claimWriter(this.dir);
      const present = new Set(await readdir(dir));
      for (const required of [PXE_KERNEL, PXE_INITRD, IMAGE]) {
        if (!present.has(required)) throw new Error(`${dir}: ${required} is missing`);
      }
      const oems = [...present].filter((f) => /^flatcar_production_[a-z0-9_]+_image\.bin\.bz2$/.test(f) && f !== IMAGE);
      const names = [PXE_KERNEL, PXE_INITRD, IMAGE, ...oems];
      const into = this.releaseDir(r.channel, board, version);
      await mkdir(into, { recursive: true });
      filled = await markFilling(into);
      const files: Manifest["files"] = [];
      for (const name of names) {
        const sigName = signatureNames(name).find((s) => present.has(s));
        if (!sigName) throw new Error(`${dir}: ${name}.sig is missing`);
        const sig = new Uint8Array(await readFile(join(dir, sigName)));
        const dest = join(into, name);
        const temp = partName(dest);
        try {
          await copyFile(join(dir, name), temp);
          const { keyId } = await this.signingKey.verifyFile(temp, sig, name);
          await writeAtomic(`${dest}.sig`, sig);
          await rename(temp, dest);
          files.push({ name, bytes: (await stat(dest)).size, signedBy: keyId });
        } catch (err) {
          await rm(temp, { force: true });
          throw err;
        }
      }
      const txt = await this.finishRelease(
        into,
        { channel: r.channel, board, version, files, source: `import ${dir}` },
        localTxt,
      );
      const current = this.currentVersion(r.channel, r.arch);
      if (!current || compareVersions(version, current) > 0) await writeAtomic(this.currentFile(r.channel, board), txt);
      this.opts.events.append({
        kind: "flatcar.sync.done",
        detail: { ...detail, bytes: files.reduce((n, f) => n + f.bytes, 0) },
      });
      return { version, files: names };
    } catch (err) {
      this.opts.events.append({ kind: "flatcar.sync.failed", detail: { ...detail, reason: (err as Error).message } });
      throw err;
    } finally {
      await filled?.();
    }
  }

  /** Every verified release on disk, newest first per channel and board, plus syncs in flight and recent failures. */
  async list(): Promise<MirrorStatus> {
    const releases: MirroredRelease[] = [];
    for (const channel of await subdirs(this.dir)) {
      for (const arch of ARCHES) {
        const board = boardOf(arch);
        const current = this.currentVersion(channel, arch);
        const found: MirroredRelease[] = [];
        for (const version of await subdirs(this.boardDir(channel, board))) {
          const m = await readManifest(join(this.releaseDir(channel, board, version), MANIFEST));
          if (!m) continue;
          found.push({ ...m, arch, current: m.version === current, bytes: m.files.reduce((n, f) => n + f.bytes, 0) });
        }
        releases.push(...found.sort((a, b) => compareVersions(b.version, a.version)));
      }
    }
    const syncing = [...this.syncs.keys()].map(splitKey);
    const failed = [...this.failures].map(([k, f]) => ({
      ...splitKey(k),
      reason: f.reason,
      at: new Date(f.at).toISOString(),
    }));
    return { releases, syncing, failed };
  }

  /**
   * Keeps the newest `keep` verified versions per channel and board, the `current` one and every pinned one;
   * removes the rest, incomplete leftovers of syncs that are not running (here or in another process), and
   * the temporaries (`*.part`, `*.tmp`) stopped processes left in what is kept.
   */
  async prune(
    pinned: readonly PinnedRelease[] = [],
  ): Promise<{ removed: { channel: string; board: string; version: string }[]; strays: string[] }> {
    const removed: { channel: string; board: string; version: string }[] = [];
    const strays: string[] = [];
    const sweep = async (dir: string) => {
      for (const name of await removeStrays(this.dir, dir)) strays.push(join(dir, name));
    };
    const busy = new Set([...this.syncs.keys()]);
    for (const channel of await subdirs(this.dir)) {
      for (const arch of ARCHES) {
        const board = boardOf(arch);
        const current = this.currentVersion(channel, arch);
        const isPinned = (v: string) =>
          pinned.some((p) => p.channel === channel && (p.arch ?? "amd64") === arch && p.version === v);
        const versions = (await subdirs(this.boardDir(channel, board))).filter(
          (v) => ConcreteVersionSchema.safeParse(v).success,
        );
        const complete = versions.filter((v) => existsSync(join(this.releaseDir(channel, board, v), MANIFEST)));
        const newest = new Set([...complete].sort((a, b) => compareVersions(b, a)).slice(0, this.opts.config.keep));
        await sweep(join(this.boardDir(channel, board), "current"));
        for (const v of versions) {
          const dir = this.releaseDir(channel, board, v);
          const incomplete = !complete.includes(v);
          const inFlight = incomplete
            ? [...busy].some((k) => k.startsWith(`${channel}/${board}/`)) || (await hasLiveWriter(this.dir, dir))
            : false;
          if (v === current || isPinned(v) || (incomplete ? inFlight : newest.has(v))) {
            if (!inFlight) await sweep(dir);
            continue;
          }
          await rm(dir, { recursive: true, force: true });
          removed.push({ channel, board, version: v });
        }
      }
    }
    if (removed.length > 0 || strays.length > 0)
      this.opts.events.append({ kind: "flatcar.prune", detail: { removed, strays } });
    return { removed, strays };
  }
}

function syncKey(r: Release): string {
  return `${r.channel}/${boardOf(r.arch)}/${r.version}`;
}

function splitKey(key: string): { channel: string; board: string; version: string } {
  const [channel = "", board = "", version = ""] = key.split("/");
  return { channel, board, version };
}

async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await mkdir(join(path, ".."), { recursive: true });
  const tmp = tmpName(path);
  await writeFile(tmp, data);
  await rename(tmp, path);
}

async function subdirs(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  // Dot-names are the mirror's own state (partial.ts), never a channel or version.
  return entries.filter((e) => e.isDirectory() && e.name !== "current" && !e.name.startsWith(".")).map((e) => e.name);
}

async function readManifest(path: string): Promise<Manifest | null> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as Manifest;
  } catch {
    return null;
  }
}
