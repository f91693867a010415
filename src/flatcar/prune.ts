import { rm } from "node:fs/promises";
import { join } from "node:path";
import type { EventSink } from "../model/event.ts";
import { ARCHES, type MirrorLayout } from "./layout.ts";
import { hasLiveWriter, removeStrays } from "./partial.ts";
import { type Arch, boardOf, ConcreteVersionSchema, compareVersions } from "./release.ts";

/** A release a profile pins; prune never removes it. */
export interface PinnedRelease {
  channel: string;
  version: string;
  arch?: Arch | undefined;
}

export interface PruneDeps {
  layout: MirrorLayout;
  /** Verified versions kept per channel and board. */
  keep: number;
  events: EventSink;
  /** Keys (`<channel>/<board>/<version>`) of the syncs this process is running. */
  syncing: readonly string[];
}

/**
 * Keeps the newest `keep` verified versions per channel and board, the `current` one and every pinned one;
 * removes the rest, incomplete leftovers of syncs that are not running (here or in another process), and
 * the temporaries (`*.part`, `*.tmp`) stopped processes left in what is kept.
 */
export async function pruneMirror(
  d: PruneDeps,
  pinned: readonly PinnedRelease[],
): Promise<{ removed: { channel: string; board: string; version: string }[]; strays: string[] }> {
  const { layout } = d;
  const removed: { channel: string; board: string; version: string }[] = [];
  const strays: string[] = [];
  const sweep = async (dir: string) => {
    for (const name of await removeStrays(layout.dir, dir)) strays.push(join(dir, name));
  };
  for (const channel of await layout.channels()) {
    for (const arch of ARCHES) {
      const board = boardOf(arch);
      const current = layout.currentVersion(channel, arch);
      const isPinned = (v: string) =>
        pinned.some((p) => p.channel === channel && (p.arch ?? "amd64") === arch && p.version === v);
      const versions = (await layout.versions(channel, board)).filter(
        (v) => ConcreteVersionSchema.safeParse(v).success,
      );
      const complete = versions.filter((v) => layout.isMirrored(channel, arch, v));
      const newest = new Set([...complete].sort((a, b) => compareVersions(b, a)).slice(0, d.keep));
      await sweep(layout.currentDir(channel, board));
      for (const v of versions) {
        const dir = layout.releaseDir(channel, board, v);
        const incomplete = !complete.includes(v);
        const inFlight = incomplete
          ? d.syncing.some((k) => k.startsWith(`${channel}/${board}/`)) || (await hasLiveWriter(layout.dir, dir))
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
  if (removed.length > 0 || strays.length > 0) d.events.append({ kind: "flatcar.prune", detail: { removed, strays } });
  return { removed, strays };
}
