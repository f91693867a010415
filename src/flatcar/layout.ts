import { existsSync, readFileSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { ASSETS_URL } from "../files/assets.ts";
import { type Arch, boardOf, parseVersionTxt, VERSION_TXT } from "./release.ts";

/** The mirror's folder in the assets tree, on disk and in URLs. */
const FOLDER = "flatcar";

/** Beside the version folders: the `version.txt` of the newest verified release (upstream's `current`). */
const CURRENT = "current";

/** Written last into a release directory: its presence means every file in it was verified. */
export const MANIFEST = "kindling-release.json";

export interface Manifest {
  channel: string;
  board: string;
  version: string;
  files: { name: string; bytes: number; signedBy: string }[];
  verifiedAt: string;
  source: string;
}

export const ARCHES: readonly Arch[] = ["amd64", "arm64"];

/** URL path of a channel's board in the mirror (`flatcar-install -b` takes it with the server in front). */
export function boardUrlPath(channel: string, arch: Arch): string {
  return `${ASSETS_URL}/${FOLDER}/${channel}/${boardOf(arch)}`;
}

/**
 * Where things are in the mirror: the upstream release tree (`<channel>/<board>/<version>/<file>` plus
 * `<channel>/<board>/current/version.txt`) under `<assets>/flatcar`, so `flatcar-install -b` reads it unchanged.
 */
export class MirrorLayout {
  readonly dir: string;

  constructor(assetsRoot: string) {
    this.dir = join(assetsRoot, FOLDER);
  }

  boardDir(channel: string, board: string): string {
    return join(this.dir, channel, board);
  }

  releaseDir(channel: string, board: string, version: string): string {
    return join(this.dir, channel, board, version);
  }

  /** Holds the `version.txt` of the channel's newest verified release. */
  currentDir(channel: string, board: string): string {
    return join(this.dir, channel, board, CURRENT);
  }

  currentFile(channel: string, board: string): string {
    return join(this.currentDir(channel, board), VERSION_TXT);
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

  /** The manifest of a complete release, or null while it is incomplete. */
  async manifest(channel: string, board: string, version: string): Promise<Manifest | null> {
    try {
      return JSON.parse(await readFile(join(this.releaseDir(channel, board, version), MANIFEST), "utf8")) as Manifest;
    } catch {
      return null;
    }
  }

  channels(): Promise<string[]> {
    return subdirs(this.dir);
  }

  /** Version folders of a board, complete or not. */
  versions(channel: string, board: string): Promise<string[]> {
    return subdirs(this.boardDir(channel, board));
  }
}

async function subdirs(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  // Dot-names are the mirror's own state (partial.ts), never a channel or version.
  return entries.filter((e) => e.isDirectory() && e.name !== CURRENT && !e.name.startsWith(".")).map((e) => e.name);
}
