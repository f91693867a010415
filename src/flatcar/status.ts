import { ARCHES, type Manifest, type MirrorLayout } from "./layout.ts";
import { type Arch, boardOf, compareVersions } from "./release.ts";

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

/** Every verified release on disk, newest first per channel and board. */
export async function mirroredReleases(layout: MirrorLayout): Promise<MirroredRelease[]> {
  const releases: MirroredRelease[] = [];
  for (const channel of await layout.channels()) {
    for (const arch of ARCHES) {
      const board = boardOf(arch);
      const current = layout.currentVersion(channel, arch);
      const found: MirroredRelease[] = [];
      for (const version of await layout.versions(channel, board)) {
        const m = await layout.manifest(channel, board, version);
        if (!m) continue;
        found.push({ ...m, arch, current: m.version === current, bytes: m.files.reduce((n, f) => n + f.bytes, 0) });
      }
      releases.push(...found.sort((a, b) => compareVersions(b.version, a.version)));
    }
  }
  return releases;
}
