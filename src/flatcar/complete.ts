import { join } from "node:path";
import type { Logger } from "../log.ts";
import { MANIFEST, type Manifest } from "./layout.ts";
import { removeStrays } from "./partial.ts";
import { parseVersionTxt, VERSION_TXT } from "./release.ts";
import { writeAtomic } from "./verified-file.ts";

/**
 * Marks a release directory whose files are all verified as complete: writes version.txt, then the manifest
 * (last, because its presence is what "complete" means), and removes what dead writers left in it. Returns
 * the version.txt written.
 */
export async function completeRelease(
  mirrorDir: string,
  dir: string,
  m: Omit<Manifest, "verifiedAt">,
  versionTxt: Uint8Array | null,
  log: Logger,
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
      log.warn({ version: m.version, named }, "release version.txt does not name this release; writing our own");
    txt = `FLATCAR_VERSION=${m.version}\n`;
  }
  await writeAtomic(join(dir, VERSION_TXT), txt);
  const manifest: Manifest = { ...m, verifiedAt: new Date().toISOString() };
  await writeAtomic(join(dir, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
  await removeStrays(mirrorDir, dir);
  return txt;
}
