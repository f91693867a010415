import type { FileHandle } from "node:fs/promises";

/**
 * Hands out a file's DATA payloads in order: `blksize` bytes each, the last one shorter (possibly empty).
 * Blocks are returned synchronously whenever the bytes are at hand, so a transfer from memory never
 * waits on a promise; the session keeps the blocks of its window for retransmission.
 */
export interface BlockSource {
  next(): Buffer | Promise<Buffer>;
  close(): Promise<void>;
}

/**
 * RFC 764 netascii as RFC 1350 asks: LF → CR LF, CR → CR NUL. Each byte maps on its own, so a file can
 * be converted chunk by chunk.
 */
export function toNetascii(raw: Buffer): Buffer {
  let extra = 0;
  for (const byte of raw) if (byte === 0x0a || byte === 0x0d) extra++;
  if (extra === 0) return raw;
  const out = Buffer.allocUnsafe(raw.length + extra);
  let o = 0;
  for (const byte of raw) {
    if (byte === 0x0a) {
      out[o++] = 0x0d;
      out[o++] = 0x0a;
    } else if (byte === 0x0d) {
      out[o++] = 0x0d;
      out[o++] = 0x00;
    } else out[o++] = byte;
  }
  return out;
}

/** Blocks straight out of a buffer (the shared cache): views, no copies. */
export function bufferBlocks(content: Buffer, blksize: number): BlockSource {
  let at = 0;
  return {
    next() {
      const block = content.subarray(at, at + blksize);
      at += block.length;
      return block;
    },
    close: async () => {},
  };
}

/**
 * Blocks read from disk in chunks, one chunk read ahead. Memory is two chunks plus the window the
 * session holds, however large the file.
 */
export function handleBlocks(
  handle: FileHandle,
  blksize: number,
  chunkBytes: number,
  transform: (raw: Buffer) => Buffer = (raw) => raw,
): BlockSource {
  let position = 0;
  let eof = false;
  let current: Buffer = Buffer.alloc(0);
  let ahead: Promise<Buffer> | undefined;

  const read = async (): Promise<Buffer> => {
    const buf = Buffer.allocUnsafe(chunkBytes);
    let filled = 0;
    while (filled < chunkBytes) {
      const { bytesRead } = await handle.read(buf, filled, chunkBytes - filled, position + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    position += filled;
    return buf.subarray(0, filled);
  };
  const readAhead = () => {
    ahead = read();
    // A failure surfaces when the chunk is needed; until then it must not count as unhandled.
    ahead.catch(() => {});
  };

  const refill = async (): Promise<Buffer> => {
    const raw = await (ahead ?? read());
    ahead = undefined;
    if (raw.length < chunkBytes) eof = true;
    else readAhead();
    current = current.length > 0 ? Buffer.concat([current, transform(raw)]) : transform(raw);
    return take();
  };
  const take = (): Buffer | Promise<Buffer> => {
    if (current.length < blksize && !eof) return refill();
    const block = current.subarray(0, blksize);
    current = current.subarray(block.length);
    return block;
  };

  return {
    next: take,
    close: async () => {
      await ahead?.catch(() => {});
      await handle.close();
    },
  };
}
