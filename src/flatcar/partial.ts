import { existsSync, rmSync } from "node:fs";
import { mkdir, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { FileLock } from "../store/file-lock.ts";

/**
 * The mirror's in-progress files: `<dest>.<pid>.part` (a download or import being verified) and
 * `<path>.<pid>.tmp` (a small atomic write). The server and any number of `kindling assets` processes may write
 * into one mirror at once, each under its own pid. Every such process holds `<mirror>/.writers/<pid>.lock`
 * (a FileLock: the kernel releases it when the process dies) before it creates a temporary, so whoever finds
 * one can tell a live writer's file from what a killed one left behind: the latter is resumed (a `.part` of the
 * file being fetched) or removed (everything else). Temporaries are never served (files/roots.ts).
 */
const TEMPORARY = /^(.+)\.(\d+)\.(?:part|tmp)$/;

const WRITERS = ".writers";

/** This process's writer lock per mirror directory, held until the process exits. */
const held = new Map<string, FileLock>();

export const partName = (dest: string) => `${dest}.${process.pid}.part`;
export const tmpName = (path: string) => `${path}.${process.pid}.tmp`;

/** Registers this process as a writer of `mirrorDir`; call before creating any temporary in it. */
export async function claimWriter(mirrorDir: string): Promise<void> {
  if (held.has(mirrorDir)) return;
  const dir = join(mirrorDir, WRITERS);
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${process.pid}.lock`);
  // Busy only while another process checks whether a dead writer with our pid left this file (isLive below).
  for (let attempt = 0; ; attempt++) {
    const lock = FileLock.tryAcquire(file);
    if (lock) {
      held.set(mirrorDir, lock);
      // One lock file per writer process ever run: those of processes gone are removed here.
      for (const name of await readdir(dir)) {
        const pid = /^(\d+)\.lock$/.exec(name)?.[1];
        if (pid) isLive(mirrorDir, Number(pid));
      }
      return;
    }
    if (attempt >= 50) throw new Error(`${file} stays locked by another process`);
    await sleep(20);
  }
}

/** Whether the process that wrote temporaries under `pid` into `mirrorDir` is still running. */
function isLive(mirrorDir: string, pid: number): boolean {
  if (pid === process.pid) return true;
  const file = join(mirrorDir, WRITERS, `${pid}.lock`);
  if (!existsSync(file)) return false;
  const lock = FileLock.tryAcquire(file);
  if (!lock) return true;
  // Dead. Removed while still held, so a new process that reuses the pid locks a fresh file, not this one.
  rmSync(file, { force: true });
  lock.release();
  return false;
}

interface Temporary {
  path: string;
  /** The file it becomes (`dest` of `<dest>.<pid>.part`). */
  target: string;
  pid: number;
}

async function temporaries(dir: string): Promise<Temporary[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  return names.flatMap((name) => {
    const m = TEMPORARY.exec(name);
    return m ? [{ path: join(dir, name), target: join(dir, m[1]!), pid: Number(m[2]) }] : [];
  });
}

/**
 * Before fetching `dest`: the largest `.part` of it a dead writer left becomes this process's `.part`, so the
 * download resumes where the killed one stopped (the result is verified like any download); other dead ones
 * of it are removed. Returns the bytes taken over.
 */
export async function adoptPart(mirrorDir: string, dest: string): Promise<number> {
  const mine = partName(dest);
  const dead = (await temporaries(dirname(dest))).filter(
    (t) => t.target === dest && t.path.endsWith(".part") && t.path !== mine && !isLive(mirrorDir, t.pid),
  );
  if (dead.length === 0 || existsSync(mine)) {
    await Promise.all(dead.map((t) => rm(t.path, { force: true })));
    return 0;
  }
  const sizes = await Promise.all(
    dead.map((t) =>
      stat(t.path).then(
        (s) => s.size,
        () => -1,
      ),
    ),
  );
  const best = sizes.indexOf(Math.max(...sizes));
  await Promise.all(dead.filter((_, i) => i !== best).map((t) => rm(t.path, { force: true })));
  try {
    // Another process may adopt the same file at the same moment; the loser starts from zero.
    await rename(dead[best]!.path, mine);
    return sizes[best]!;
  } catch {
    return 0;
  }
}

/** Removes the temporaries dead writers left in `dir`; returns their names. */
export async function removeStrays(mirrorDir: string, dir: string): Promise<string[]> {
  const dead = (await temporaries(dir)).filter((t) => !isLive(mirrorDir, t.pid));
  await Promise.all(dead.map((t) => rm(t.path, { force: true })));
  return dead.map((t) => basename(t.path));
}

let marks = 0;

/**
 * Marks `dir` as being filled by this process until the returned function runs: between two files (while a
 * signature is fetched) there may be no `.part` in it, and prune in another process must still see the sync.
 */
export async function markFilling(dir: string): Promise<() => Promise<void>> {
  const mark = join(dir, `.filling-${++marks}.${process.pid}.tmp`);
  await writeFile(mark, "");
  return () => rm(mark, { force: true });
}

/** Whether a live writer has temporaries in `dir` (a sync or import in another process is filling it). */
export async function hasLiveWriter(mirrorDir: string, dir: string): Promise<boolean> {
  return (await temporaries(dir)).some((t) => isLive(mirrorDir, t.pid));
}
