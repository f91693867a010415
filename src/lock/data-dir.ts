import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { writeFileAtomic } from "../files/atomic.ts";
import { FileLock } from "../store/file-lock.ts";

/** What the running `kindling serve` says about itself, for the message a second one prints. */
const HolderSchema = z.object({
  pid: z.number().int(),
  startedAt: z.string(),
  /** Bound listeners, e.g. `HTTP 0.0.0.0:8080`; empty while it is still starting. */
  listeners: z.array(z.string()),
});
export type Holder = z.infer<typeof HolderSchema>;

export class DataDirInUseError extends Error {
  override name = "DataDirInUseError";
}

export const lockFile = (dataDir: string) => join(dataDir, "serve.lock");
export const holderFile = (dataDir: string) => join(dataDir, "serve.json");

/**
 * One `kindling serve` per data dir: two would both answer DHCP from one lease table and hand one address to
 * two machines. The lock is `serve.lock` (see FileLock: released by the kernel when the process dies); beside
 * it `serve.json` names the holder (pid, start time, listeners), written only while the lock is held, so a
 * second instance can say who is in the way. A `serve.json` left by a crash is harmless: only the lock counts,
 * and the next holder rewrites it. Client commands and `kindling assets` do not take this lock.
 */
export class DataDirLock {
  private constructor(
    private readonly lock: FileLock,
    private readonly dataDir: string,
    private readonly startedAt: string,
  ) {}

  /** Takes the data dir, or throws DataDirInUseError naming the instance that has it. */
  static acquire(dataDir: string): DataDirLock {
    const lock = FileLock.tryAcquire(lockFile(dataDir));
    if (!lock) throw new DataDirInUseError(inUseMessage(dataDir));
    const held = new DataDirLock(lock, dataDir, new Date().toISOString());
    try {
      held.describe([]);
    } catch (err) {
      lock.release();
      throw err;
    }
    return held;
  }

  /** Records the listeners this instance bound, for the message a second instance prints. */
  describe(listeners: string[]): void {
    const holder: Holder = { pid: process.pid, startedAt: this.startedAt, listeners };
    writeFileAtomic(holderFile(this.dataDir), `${JSON.stringify(holder)}\n`, 0o644);
  }

  release(): void {
    // Removed while still held: after release another instance may already have written its own.
    rmSync(holderFile(this.dataDir), { force: true });
    this.lock.release();
  }
}

/** What the running instance wrote about itself; throws when `serve.json` is missing or unreadable. */
export function readHolder(dataDir: string): Holder {
  return HolderSchema.parse(JSON.parse(readFileSync(holderFile(dataDir), "utf8")));
}

function inUseMessage(dataDir: string): string {
  const where = `data dir ${dataDir} is in use by another kindling serve`;
  const fix = "stop it first, or give this instance its own --data-dir";
  let holder: Holder;
  try {
    holder = readHolder(dataDir);
  } catch (err) {
    const why = err instanceof Error ? err.message.split("\n")[0] : String(err);
    return `${where} (it holds ${lockFile(dataDir)}; ${holderFile(dataDir)} is unreadable: ${why}); ${fix}`;
  }
  const listeners = holder.listeners.length > 0 ? holder.listeners.join(", ") : "still starting, no listener yet";
  return `${where}: pid ${holder.pid}, started ${holder.startedAt}, ${listeners}; ${fix}`;
}
