import { open, stat, truncate } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { describeError } from "../net/error-cause.ts";

/** The origin does not have this file (404/410): retrying will not help. */
export class MissingFileError extends Error {
  override name = "MissingFileError";
  constructor(readonly url: string) {
    super(`not found at origin: ${url}`);
  }
}

export class DownloadError extends Error {
  override name = "DownloadError";
  /** Worth another attempt (server error, short read) as opposed to a refusal such as 403. */
  constructor(
    message: string,
    readonly retryable = false,
  ) {
    super(message);
  }
}

export interface DownloadOptions {
  fetch: typeof fetch;
  attempts: number;
  onProgress?: ((bytes: number, total: number | undefined) => void) | undefined;
  /** Sees every received chunk with its offset, in order; an error it throws ends the download at once. */
  sink?: ((chunk: Uint8Array, at: number) => Promise<void>) | undefined;
}

const sizeOf = (path: string) =>
  stat(path).then(
    (s) => s.size,
    () => 0,
  );

/** Total length from `Content-Range: bytes a-b/total`, when the origin states it. */
function rangeTotal(header: string | null): number | undefined {
  const m = /\/(\d+)\s*$/.exec(header ?? "");
  return m ? Number(m[1]) : undefined;
}

function rangeStart(header: string | null): number | undefined {
  const m = /bytes\s+(\d+)-/.exec(header ?? "");
  return m ? Number(m[1]) : undefined;
}

/**
 * Downloads `url` into `path`, following redirects. Bytes already in `path` (an earlier cut transfer)
 * are kept and the rest is asked for with Range; an origin that answers 200 instead starts over.
 * A dropped connection is retried up to `attempts` times, each resuming where the last stopped.
 */
export async function downloadTo(
  url: string,
  path: string,
  opts: DownloadOptions,
): Promise<{ bytes: number; resumed: number }> {
  let lastError: unknown;
  let resumed = 0;
  let sinkError: { error: unknown } | undefined;
  for (let attempt = 1; attempt <= opts.attempts; attempt++) {
    const have = await sizeOf(path);
    try {
      const res = await opts.fetch(url, { redirect: "follow", headers: have > 0 ? { range: `bytes=${have}-` } : {} });
      if (res.status === 404 || res.status === 410) {
        await res.body?.cancel();
        throw new MissingFileError(url);
      }
      let offset: number;
      let total: number | undefined;
      if (have > 0 && res.status === 206 && rangeStart(res.headers.get("content-range")) === have) {
        offset = have;
        total = rangeTotal(res.headers.get("content-range"));
        resumed++;
      } else if (res.status === 200 || (res.status === 416 && have > 0)) {
        // No usable range: start from zero (416 means our partial file no longer fits the origin's).
        if (res.status === 416) {
          await res.body?.cancel();
          await truncate(path, 0);
          continue;
        }
        offset = 0;
        const len = res.headers.get("content-length");
        total = len === null ? undefined : Number(len);
      } else {
        await res.body?.cancel();
        const refused = res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429;
        throw new DownloadError(`${url}: HTTP ${res.status}`, !refused);
      }
      if (!res.body) throw new DownloadError(`${url}: empty response`);
      let bytes = offset;
      opts.onProgress?.(bytes, total);
      // Chunks are gathered into 1 MiB writes; whatever arrived before a cut is still written (finally), so
      // the file is always a clean prefix to resume from.
      const file = await open(path, offset === 0 ? "w" : "a");
      let pending: Uint8Array[] = [];
      let pendingBytes = 0;
      const flush = async () => {
        if (pendingBytes === 0) return;
        const batch = pending;
        pending = [];
        pendingBytes = 0;
        await file.write(Buffer.concat(batch));
      };
      try {
        for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
          if (opts.sink) {
            try {
              await opts.sink(chunk, bytes);
            } catch (error) {
              sinkError = { error };
              throw error;
            }
          }
          pending.push(chunk);
          pendingBytes += chunk.length;
          bytes += chunk.length;
          if (pendingBytes >= 1 << 20) await flush();
          opts.onProgress?.(bytes, total);
        }
      } finally {
        await flush().finally(() => file.close());
      }
      if (total !== undefined && bytes !== total)
        throw new DownloadError(`${url}: got ${bytes} of ${total} bytes`, true);
      return { bytes, resumed };
    } catch (err) {
      // Anything else (connection reset, body cut mid-stream) is a network fault worth resuming.
      if (sinkError || err instanceof MissingFileError || (err instanceof DownloadError && !err.retryable)) throw err;
      lastError = err;
      if (attempt < opts.attempts) await sleep(100 * attempt);
    }
  }
  throw new DownloadError(`${url}: gave up after ${opts.attempts} attempts (${describeError(lastError)})`);
}

/** Small files (signatures, version.txt) read whole; null when the origin does not have them. */
export async function fetchSmall(
  fetchFn: typeof fetch,
  url: string,
  attempts = 3,
  limit = 1 << 20,
): Promise<Uint8Array | null> {
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await fetchFn(url, { redirect: "follow" });
      if (res.status === 404 || res.status === 410) {
        await res.body?.cancel();
        return null;
      }
      if (!res.ok) {
        await res.body?.cancel();
        throw new DownloadError(
          `${url}: HTTP ${res.status}`,
          res.status >= 500 || res.status === 408 || res.status === 429,
        );
      }
      const buf = new Uint8Array(await res.arrayBuffer());
      if (buf.length > limit) throw new DownloadError(`${url}: ${buf.length} bytes is too large`);
      return buf;
    } catch (err) {
      const retryable = !(err instanceof DownloadError) || err.retryable;
      if (!retryable || attempt >= attempts)
        throw err instanceof DownloadError ? err : new DownloadError(`${url}: ${describeError(err)}`);
      await sleep(100 * attempt);
    }
  }
}
