/**
 * The renewal journal (`<dataDir>/lease-replay.json`): renewals a PostgreSQL node acknowledged from memory
 * while the database was unreachable, kept on disk until they are written there. An ACK leaves only once its
 * renewal is durable (fsynced file, fsynced directory), so neither a crash nor a power loss loses one.
 */
import { existsSync, readFileSync } from "node:fs";
import { open, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { z } from "zod";
import type { Logger } from "../log.ts";

export const RenewalSchema = z.object({
  subnet: z.string(),
  lease: z.object({
    ip: z.ipv4(),
    mac: z.string(),
    state: z.literal("bound"),
    expiresAt: z.number(),
    hostname: z.string().nullable(),
    updatedAt: z.number(),
  }),
});
export type Renewal = z.infer<typeof RenewalSchema>;

export class RenewalJournal {
  /** The write under way, and the one queued behind it for everything changed since it began. */
  private writing: Promise<void> | undefined;
  private queued: Promise<void> | undefined;
  /** Journal writes done (each one write of the file and two fsyncs). */
  writes = 0;

  /** `contents` is what the journal must hold: read when a write begins. */
  constructor(
    private readonly file: string,
    private readonly contents: () => Renewal[],
    private readonly log: Logger,
  ) {}

  /** What the journal held at start; an unreadable one is logged and ignored. */
  read(): Renewal[] {
    if (!existsSync(this.file)) return [];
    try {
      return z.array(RenewalSchema).parse(JSON.parse(readFileSync(this.file, "utf8")));
    } catch (err) {
      this.log.error({ err, file: this.file }, "dhcp: renewal journal unreadable; ignoring it");
      return [];
    }
  }

  /**
   * Resolves once the journal on disk holds `contents()` as of this call or later; rejects when it cannot be
   * written. Group commit: one write is under way at a time and the next covers every change made
   * meanwhile, so a burst of renewals costs a few writes of the journal (each at most one entry per address
   * the pools hold) and two fsyncs each, not one per renewal. The first waits for the end of the event-loop
   * turn to take that turn's renewals along.
   */
  save(): Promise<void> {
    if (this.queued) return this.queued;
    const before = this.writing ?? new Promise<void>((res) => setImmediate(res));
    const next = before
      .catch(() => {})
      .then(() => {
        this.queued = undefined;
        const w = this.write();
        this.writing = w;
        const done = () => {
          if (this.writing === w) this.writing = undefined;
        };
        w.then(done, done);
        return w;
      });
    this.queued = next;
    return next;
  }

  /** Waits for the writes under way (their callers handle their failures). */
  async close(): Promise<void> {
    await this.queued?.catch(() => {});
    await this.writing?.catch(() => {});
  }

  /**
   * The whole journal to a temp file, fsynced, renamed into place, then the directory fsynced (the rename
   * itself is durable only then): a crash or power loss leaves the old journal or the new one, never half.
   */
  private async write(): Promise<void> {
    const dir = dirname(this.file);
    const renewals = this.contents();
    this.writes++;
    if (renewals.length === 0) {
      await rm(this.file, { force: true });
      await syncDir(dir);
      return;
    }
    const tmp = `${this.file}.tmp`;
    const fh = await open(tmp, "w", 0o600);
    try {
      await fh.writeFile(JSON.stringify(renewals));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.file);
    await syncDir(dir);
  }
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
