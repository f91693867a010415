import type { SigningKey } from "./signing-key.ts";

/**
 * Verifies a file's signature while it downloads: each received chunk is fed to openpgp as it arrives, so
 * hashing overlaps the transfer instead of re-reading the file afterwards. Backpressure (8 MiB) keeps a fast
 * origin from outrunning the hash. If the feed cannot stay contiguous (the origin restarted from zero), the
 * check detaches and the caller verifies the finished file from disk instead.
 */
export class InlineCheck {
  private readonly writer: WritableStreamDefaultWriter<Uint8Array>;
  private readonly result: Promise<{ keyId: string }>;
  private next = 0;
  private detached = false;
  private failure: unknown;

  constructor(key: SigningKey, signature: Uint8Array, name: string) {
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>(
      undefined,
      new ByteLengthQueuingStrategy({ highWaterMark: 8 << 20 }),
    );
    this.writer = writable.getWriter();
    this.result = key.verifyStream(readable, signature, name);
    this.result.catch((err: unknown) => {
      this.failure ??= err;
    });
  }

  /** Feeds the bytes at offset `at`. Throws when the check has already failed, so the download stops early. */
  async write(chunk: Uint8Array, at: number): Promise<void> {
    if (this.detached) return;
    if (this.failure !== undefined) throw this.failure;
    if (at !== this.next) return this.detach();
    this.next += chunk.length;
    try {
      await this.writer.ready;
      this.writer.write(chunk).catch(() => {
        // The check failed; `failure` holds why and the next write or finish() reports it.
      });
    } catch {
      // Same: the readable side was cancelled by a failed check.
    }
  }

  /** The verdict over everything fed; null when the feed detached and the file must be verified from disk. */
  async finish(): Promise<{ keyId: string } | null> {
    if (this.detached) return null;
    await this.writer.close().catch(() => {});
    return this.result;
  }

  /** Stops feeding (the download failed); the pending check is dropped. */
  abandon(): void {
    if (!this.detached) this.detach();
  }

  private detach(): void {
    this.detached = true;
    this.writer.abort(new Error("download restarted from the beginning")).catch(() => {});
  }
}
