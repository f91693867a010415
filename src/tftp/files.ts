import { constants, lstatSync, type Stats } from "node:fs";
import { access, type FileHandle, open } from "node:fs/promises";
import { join, resolve } from "node:path";
import { findInRoots } from "../files/roots.ts";
import { ErrorCode } from "./packet.ts";
import { stageIpxeBinaries } from "./stage.ts";

/** A request that must be answered with a TFTP error instead of a file. */
export class FileAccessError extends Error {
  override name = "FileAccessError";
  constructor(
    readonly code: typeof ErrorCode.FILE_NOT_FOUND | typeof ErrorCode.ACCESS_VIOLATION,
    message: string,
  ) {
    super(message);
  }
}

const PROJECT_DIR = resolve(import.meta.dirname, "..", "..");
const DEBIAN_IPXE = "/usr/lib/ipxe";

/**
 * The roots a server with this config serves: the configured ones; else the project's own iPXE build
 * (`ipxe/bin`) if there is one; else Debian's `ipxe` package (undionly.kpxe, ipxe.efi, snponly.efi) staged into
 * `stageDir` — Debian ships ipxe.efi as a link to /boot, and a link out of a served root is always refused.
 */
export async function tftpRoots(
  configured: readonly string[],
  stageDir: string,
  projectDir = PROJECT_DIR,
  packageDir = DEBIAN_IPXE,
): Promise<string[]> {
  if (configured.length > 0) return configured.map((r) => resolve(r));
  const own = join(projectDir, "ipxe", "bin");
  try {
    await access(own, constants.R_OK | constants.X_OK);
    return [own];
  } catch {
    await stageIpxeBinaries(packageDir, stageDir);
    return [stageDir];
  }
}

/**
 * Turns a client's file name into a path relative to a root. PXE ROMs and Windows-made configs send
 * leading slashes, backslashes and `./`; those are harmless and normalised. A `..` segment or a NUL
 * is refused outright rather than resolved, so no spelling of an escape is ever looked up.
 */
export function normaliseName(name: string): string {
  if (name.includes("\0")) throw new FileAccessError(ErrorCode.ACCESS_VIOLATION, "NUL in file name");
  const segments = name
    .replaceAll("\\", "/")
    .split("/")
    .filter((s) => s !== "" && s !== ".");
  if (segments.includes("..")) throw new FileAccessError(ErrorCode.ACCESS_VIOLATION, "'..' in file name");
  if (segments.length === 0) throw new FileAccessError(ErrorCode.ACCESS_VIOLATION, "no file name");
  return segments.join("/");
}

/**
 * The real path a client's file name refers to: the first root that has it wins. Throws FileAccessError
 * (1 not found, 2 refused) for escapes and missing files; the containment rules are `findInRoots`, which
 * HTTP uses too.
 */
export async function resolveInRoots(roots: readonly string[], name: string): Promise<string> {
  const found = await findInRoots(roots, normaliseName(name).split("/"));
  if (found.ok) return found.path;
  throw new FileAccessError(
    found.reason === "not-found" ? ErrorCode.FILE_NOT_FOUND : ErrorCode.ACCESS_VIOLATION,
    found.detail,
  );
}

/** An opened file: either shared cached bytes or a handle to stream from (the caller closes it). */
export type Opened = { path: string; size: number } & ({ content: Buffer } | { handle: FileHandle });

/** Identity of a file version: any write, replacement or permission change gives a new one. */
function versionOf(st: Stats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}

interface Cached {
  /** Identity of the file version the bytes came from; any change on disk invalidates the entry. */
  version: string;
  content: Buffer;
}

export interface CatalogOptions {
  cacheMaxFileBytes: number;
  cacheMaxBytes: number;
}

/** Serves files from a list of roots, searched in order, with a shared LRU cache of small files. */
export class FileCatalog {
  private readonly cache = new Map<string, Cached>();
  private readonly loading = new Map<string, Promise<Buffer>>();
  private cachedBytes = 0;

  constructor(
    readonly roots: readonly string[],
    private readonly opts: CatalogOptions,
  ) {}

  async open(name: string): Promise<Opened> {
    const real = await resolveInRoots(this.roots, name);
    return this.cachedVersion(real) ?? this.openReal(real);
  }

  /**
   * The cached bytes of `real` if they are still the file on disk, checked with one lstat and no open.
   * Synchronous on purpose: realpath has just walked this path, so its inode is in memory and lstat takes
   * a few microseconds, where each async fs call is a thread-pool round trip of 20-50 µs, and a cache hit
   * (iPXE for a rack of ROMs) is the common case. lstat does not follow links: a file replaced by a
   * symlink is no hit, and openReal refuses it. A chmod changes ctime, so it is no hit either.
   */
  private cachedVersion(real: string): Opened | undefined {
    const hit = this.cache.get(real);
    if (!hit) return undefined;
    let st: Stats;
    try {
      st = lstatSync(real);
    } catch {
      return undefined;
    }
    if (!st.isFile() || versionOf(st) !== hit.version) return undefined;
    // Re-insert to mark it most recently used.
    this.cache.delete(real);
    this.cache.set(real, hit);
    return { path: real, size: hit.content.length, content: hit.content };
  }

  private async openReal(real: string): Promise<Opened> {
    let handle: FileHandle;
    try {
      // O_NOFOLLOW: the path is already resolved; a symlink here means it was swapped in since.
      handle = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (err) {
      throw new FileAccessError(ErrorCode.ACCESS_VIOLATION, `cannot open: ${(err as NodeJS.ErrnoException).code}`);
    }
    try {
      const st = await handle.stat();
      if (!st.isFile()) throw new FileAccessError(ErrorCode.FILE_NOT_FOUND, "not a regular file");
      if (st.size > this.opts.cacheMaxFileBytes) return { path: real, size: st.size, handle };
      const content = await this.cached(real, versionOf(st), handle);
      await handle.close();
      return { path: real, size: content.length, content };
    } catch (err) {
      await handle.close().catch(() => {});
      throw err;
    }
  }

  private async cached(real: string, version: string, handle: FileHandle): Promise<Buffer> {
    const hit = this.cache.get(real);
    if (hit?.version === version) {
      // Re-insert to mark it most recently used.
      this.cache.delete(real);
      this.cache.set(real, hit);
      return hit.content;
    }
    const key = `${real}\0${version}`;
    let pending = this.loading.get(key);
    if (!pending) {
      // One read per file version however many ROMs ask for it at the same moment.
      pending = handle.readFile().finally(() => this.loading.delete(key));
      this.loading.set(key, pending);
      this.store(real, version, await pending);
    }
    return pending;
  }

  private store(real: string, version: string, content: Buffer): void {
    const old = this.cache.get(real);
    if (old) {
      this.cache.delete(real);
      this.cachedBytes -= old.content.length;
    }
    if (content.length > this.opts.cacheMaxBytes) return;
    this.cache.set(real, { version, content });
    this.cachedBytes += content.length;
    for (const [path, entry] of this.cache) {
      if (this.cachedBytes <= this.opts.cacheMaxBytes) break;
      this.cache.delete(path);
      this.cachedBytes -= entry.content.length;
    }
  }
}
