import { join } from "node:path";
import type { Logger } from "../log.ts";
import type { EventSink } from "../model/event.ts";
import type { FlatcarConfig } from "./config.ts";
import { importRelease } from "./import.ts";
import { boardUrlPath, MirrorLayout } from "./layout.ts";
import { type PinnedRelease, pruneMirror } from "./prune.ts";
import { type Arch, boardOf, type ReleaseRequest, ReleaseRequestSchema } from "./release.ts";
import { SigningKey } from "./signing-key.ts";
import { SingleFlight } from "./single-flight.ts";
import { type MirrorStatus, mirroredReleases } from "./status.ts";
import { type Progress, syncKey, syncRelease } from "./sync.ts";
import type { Verified } from "./verified-file.ts";

export interface SyncOptions {
  onProgress?: ((p: Progress) => void) | undefined;
}

/** Where a Flatcar release's files are, once verified in the mirror. */
export type ReleaseStatus =
  | {
      state: "ready";
      version: string;
      /** URL path of the board, e.g. /assets/flatcar/stable/amd64-usr. */
      basePath: string;
    }
  | { state: "syncing" | "failed"; reason: string };

export interface MirrorOptions {
  /** Assets root (`<dataDir>/assets`); the mirror lives in its `flatcar/` folder. */
  root: string;
  config: FlatcarConfig;
  events: EventSink;
  log: Logger;
  fetch?: typeof fetch;
}

/**
 * The verified local copy of Flatcar releases (layout.ts). A file appears under its final name only after
 * its signature checked out (verified-file.ts), whether it was downloaded (sync.ts) or copied by hand
 * (import.ts). Syncs run once per release at a time; a failed one is reported for a while before a request
 * starts it again.
 */
export class Mirror {
  readonly signingKey: SigningKey;
  private readonly layout: MirrorLayout;
  private readonly fetch: typeof fetch;
  private readonly syncs = new SingleFlight<{ version: string }, Progress>();
  private readonly files = new SingleFlight<Verified>();
  private readonly failures = new Map<string, { reason: string; at: number }>();

  constructor(private readonly opts: MirrorOptions) {
    this.layout = new MirrorLayout(opts.root);
    this.fetch = opts.fetch ?? globalThis.fetch;
    this.signingKey = new SigningKey({
      file: opts.config.signingKey,
      url: opts.config.signingKeyUrl,
      fingerprint: opts.config.signingFingerprint,
      cacheFile: join(this.layout.dir, "signing-key.asc"),
      fetch: this.fetch,
      log: opts.log,
    });
  }

  /** `<assets>/flatcar`. */
  get dir(): string {
    return this.layout.dir;
  }

  /** The mirrored `current` of a channel, if a verified sync ever resolved it. */
  currentVersion(channel: string, arch: Arch): string | null {
    return this.layout.currentVersion(channel, arch);
  }

  /** Where a release's files are on disk. */
  releaseDir(channel: string, arch: Arch, version: string): string {
    return this.layout.releaseDir(channel, boardOf(arch), version);
  }

  isMirrored(channel: string, arch: Arch, version: string): boolean {
    return this.layout.isMirrored(channel, arch, version);
  }

  /** Non-blocking: the verified release if mirrored; otherwise starts a background sync (once) and says so. */
  ensure(req: ReleaseRequest): ReleaseStatus {
    const parsed = ReleaseRequestSchema.safeParse(req);
    if (!parsed.success) return { state: "failed", reason: `invalid release: ${parsed.error.issues[0]?.message}` };
    const r = parsed.data;
    const version = r.version === "current" ? this.currentVersion(r.channel, r.arch) : r.version;
    if (version && this.isMirrored(r.channel, r.arch, version)) {
      return { state: "ready", version, basePath: boardUrlPath(r.channel, r.arch) };
    }
    const key = syncKey(r);
    const label = `Flatcar ${r.channel} ${boardOf(r.arch)} ${r.version}`;
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
    const deps = {
      ...this.opts,
      layout: this.layout,
      signingKey: this.signingKey,
      fetch: this.fetch,
      files: this.files,
    };
    const run = (progress: (p: Progress) => void) =>
      syncRelease(deps, r, progress).then(
        (done) => {
          this.failures.delete(key);
          return done;
        },
        (err: unknown) => {
          this.failures.set(key, { reason: (err as Error).message, at: Date.now() });
          throw err;
        },
      );
    return this.syncs.run(key, run, opts.onProgress);
  }

  /** Newest progress of every running sync, keyed `<channel>/<board>/<version as requested>` like `list().syncing`. */
  progress(): Map<string, Progress> {
    return this.syncs.latest();
  }

  /**
   * Takes release files copied by hand (USB stick, air gap) from `dir` and verifies them exactly like a
   * download. The version comes from `dir/version.txt` unless given; `current` moves to it when newer.
   */
  import(
    dir: string,
    target: { channel: string; arch?: Arch; version?: string },
  ): Promise<{ version: string; files: string[] }> {
    return importRelease({ ...this.opts, layout: this.layout, signingKey: this.signingKey }, dir, target);
  }

  /** Every verified release on disk, newest first per channel and board, plus syncs in flight and recent failures. */
  async list(): Promise<MirrorStatus> {
    const releases = await mirroredReleases(this.layout);
    const syncing = this.syncs.keys().map(splitKey);
    const failed = [...this.failures].map(([k, f]) => ({
      ...splitKey(k),
      reason: f.reason,
      at: new Date(f.at).toISOString(),
    }));
    return { releases, syncing, failed };
  }

  /** prune.ts: keeps the newest `flatcar.keep` versions, `current` and the pinned ones; removes the rest. */
  prune(
    pinned: readonly PinnedRelease[] = [],
  ): Promise<{ removed: { channel: string; board: string; version: string }[]; strays: string[] }> {
    const deps = { layout: this.layout, keep: this.opts.config.keep, events: this.opts.events };
    return pruneMirror({ ...deps, syncing: this.syncs.keys() }, pinned);
  }
}

function splitKey(key: string): { channel: string; board: string; version: string } {
  const [channel = "", board = "", version = ""] = key.split("/");
  return { channel, board, version };
}
