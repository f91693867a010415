import { posix, resolve } from "node:path";
import type { Sugar } from "./parsed.ts";

/**
 * Where a `local:` name points: joined onto the files directory and cleaned, as Butane does (so `/motd.txt` and
 * `sub/../motd.txt` are both `<dir>/motd.txt`, and `..data` is a name like any other); a result outside the
 * directory is refused.
 */
export function localPath(rel: string, path: string, sg: Sugar): string | undefined {
  if (!sg.filesDir) {
    sg.fail(path, `"${rel}" is a local file, which needs a files directory (--files-dir)`);
    return undefined;
  }
  const base = resolve(sg.filesDir);
  const file = posix.join(base, rel);
  if (file !== base && !file.startsWith(`${base}/`)) {
    sg.fail(path, `local path "${rel}" is outside the files directory`);
    return undefined;
  }
  return file;
}
