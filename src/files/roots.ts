import { realpath } from "node:fs/promises";
import { join, sep } from "node:path";

export type RootLookup =
  | { ok: true; path: string }
  | { ok: false; reason: "not-found" | "outside" | "unreadable"; detail: string };

const MISSING = new Set(["ENOENT", "ENOTDIR"]);

/**
 * Names that are never served, as if absent: files still being written (`*.part`, `*.tmp`: unverified bytes
 * under a temporary name) and dot-names (state kept beside served files, such as the mirror's writer locks).
 */
const unpublished = (segment: string) => segment.startsWith(".") || /\.(?:part|tmp)$/.test(segment);

/**
 * Finds a relative path in the first root that has it, for every protocol that serves files (TFTP, HTTP).
 * Callers turn their request into `segments` by their own rules (each non-empty, never `.` or `..`); here
 * the real path, symlinks resolved, must stay inside that root's real path, so a link out of a served tree
 * is refused whoever made it.
 */
export async function findInRoots(roots: readonly string[], segments: readonly string[]): Promise<RootLookup> {
  if (segments.some(unpublished)) return { ok: false, reason: "not-found", detail: "file not found" };
  for (const root of roots) {
    let rootReal: string;
    try {
      rootReal = await realpath(root);
    } catch {
      continue; // a configured root that does not exist (yet) holds nothing
    }
    let real: string;
    try {
      real = await realpath(join(rootReal, ...segments));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? "";
      if (MISSING.has(code)) continue;
      return { ok: false, reason: "unreadable", detail: `cannot resolve: ${code}` };
    }
    const inside = rootReal.endsWith(sep) ? rootReal : rootReal + sep;
    if (!real.startsWith(inside)) return { ok: false, reason: "outside", detail: "resolves outside the root" };
    return { ok: true, path: real };
  }
  return { ok: false, reason: "not-found", detail: "file not found" };
}
