import Database from "better-sqlite3";

/**
 * An exclusive lock on a file, held by this process until `release()` or until the process dies.
 *
 * SQLite's file locking does the work (POSIX advisory locks on a small SQLite file of its own): the kernel drops
 * the lock with the process, so a crash or `kill -9` never leaves a stale lock to clean up by hand, and no pid
 * number is trusted (a pid file cannot tell its writer from an unrelated process that reuses the number). SQLite
 * also accounts for its locks inside one process, so a second attempt from the same process is refused as well.
 * better-sqlite3 is already Kindling's database driver; no native module is added for this.
 */
export class FileLock {
  private constructor(
    private readonly db: Database.Database,
    readonly path: string,
  ) {}

  /** Takes the lock (creating the file), or returns null at once when another holder has it. */
  static tryAcquire(path: string): FileLock | null {
    // timeout 0: no busy wait, the answer is immediate.
    const db = new Database(path, { timeout: 0 });
    try {
      // Exclusive locking mode keeps the lock the first write takes until the connection closes; the journal
      // lives in memory so no `-journal` file appears beside the lock.
      db.pragma("locking_mode = EXCLUSIVE");
      db.pragma("journal_mode = MEMORY");
      db.exec("BEGIN EXCLUSIVE; CREATE TABLE IF NOT EXISTS held (x); COMMIT");
      return new FileLock(db, path);
    } catch (err) {
      db.close();
      if ((err as { code?: string }).code === "SQLITE_BUSY") return null;
      throw new Error(`lock file ${path}: ${(err as Error).message}`);
    }
  }

  release(): void {
    if (this.db.open) this.db.close();
  }
}
