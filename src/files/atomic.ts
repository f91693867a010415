import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { dirname } from "node:path";

/**
 * Writes `path` so that a crash at any point leaves either the old file or the complete new one, never an
 * empty or torn one: a fresh temp file beside it (created with `mode`), written and fsynced, renamed over
 * `path`, then the directory fsynced so the rename itself survives power loss.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, mode: number): void {
  const tmp = `${path}.${process.pid}.tmp`;
  // A leftover of a crashed process with the same pid would keep its old mode if reopened: start afresh.
  rmSync(tmp, { force: true });
  const fd = openSync(tmp, "wx", mode);
  let written = false;
  try {
    const buf = typeof data === "string" ? Buffer.from(data) : data;
    for (let at = 0; at < buf.length; ) at += writeSync(fd, buf, at);
    fsyncSync(fd);
    written = true;
  } finally {
    closeSync(fd);
    if (!written) rmSync(tmp, { force: true });
  }
  renameSync(tmp, path);
  const dir = openSync(dirname(path), "r");
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}
