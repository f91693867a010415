/**
 * The Flatcar release the storm boots: kernel and initrd of the chosen sizes (random bytes, so nothing
 * compresses or dedups them), a small image, detached signatures from a throw-away key shaped like
 * Flatcar's (test/flatcar/fixture.ts), imported into a data directory with `kindling assets import` — the
 * air-gapped path an operator uses — so Kindling serves it from a verified mirror, exactly as in production.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assetsDir } from "../../src/files/assets.ts";
import { IMAGE, KERNEL_SIG_FALLBACK, PXE_INITRD, PXE_KERNEL } from "../../src/flatcar/release.ts";
import { detachedSign, makeKey } from "../../test/flatcar/fixture.ts";
import { kindlingCommand } from "./command.ts";

export const CHANNEL = "stable";
export const VERSION = "9999.0.0";
const IMAGE_BYTES = 1 << 20;

export interface StagedRelease {
  /** A data dir holding only the mirror (`assets/flatcar/...`); each Kindling run gets a hard-linked copy. */
  dataDir: string;
  keyFile: string;
  fingerprint: string;
  /** `assets/` path under which Kindling serves the board, and its directory on disk (for nginx). */
  assetsDir: string;
}

/** Random bytes of any size, built from 1 MiB of randomness (generating 300 MB of it costs seconds). */
function filler(bytes: number): Buffer {
  const block = randomBytes(1 << 20);
  const out = Buffer.allocUnsafe(bytes);
  for (let at = 0; at < bytes; at += block.length) block.copy(out, at, 0, Math.min(block.length, bytes - at));
  return out;
}

export async function stageRelease(work: string, sizes: { kernel: number; initrd: number }): Promise<StagedRelease> {
  const key = await makeKey("Storm Buildbot");
  const staging = join(work, "release");
  mkdirSync(staging, { recursive: true });
  const put = async (name: string, sigName: string, data: Buffer) => {
    writeFileSync(join(staging, name), data);
    writeFileSync(join(staging, sigName), await detachedSign(key, data));
  };
  // One at a time, so at most one large buffer is alive.
  await put(PXE_KERNEL, KERNEL_SIG_FALLBACK, filler(sizes.kernel));
  await put(PXE_INITRD, `${PXE_INITRD}.sig`, filler(sizes.initrd));
  await put(IMAGE, `${IMAGE}.sig`, filler(IMAGE_BYTES));
  writeFileSync(join(staging, "version.txt"), `FLATCAR_VERSION=${VERSION}\n`);
  const keyFile = join(work, "signing-key.asc");
  writeFileSync(keyFile, key.armoredPublic);

  const dataDir = join(work, "mirror");
  const [cmd, ...args] = kindlingCommand();
  const r = spawnSync(
    cmd!,
    [
      ...args,
      "assets",
      "import",
      staging,
      "--channel",
      CHANNEL,
      "--signing-key",
      keyFile,
      "--signing-fingerprint",
      key.fingerprint,
      "--data-dir",
      dataDir,
    ],
    { encoding: "utf8", timeout: 600_000 },
  );
  if (r.status !== 0) throw new Error(`kindling assets import failed (${r.status}): ${r.stderr}${r.stdout}`);
  rmSync(staging, { recursive: true, force: true });
  return { dataDir, keyFile, fingerprint: key.fingerprint, assetsDir: assetsDir(dataDir) };
}
