import { randomBytes } from "node:crypto";
import { access, lstat, mkdir, open, readFile, rename, rm, symlink, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { handleBlocks, toNetascii } from "../../src/tftp/blocks.ts";
import { FileCatalog, normaliseName, tftpRoots } from "../../src/tftp/files.ts";
import { tempDir } from "./helpers.ts";

describe("file names", () => {
  it.each([
    ["/undionly.kpxe", "undionly.kpxe"],
    ["\\efi\\boot\\ipxe.efi", "efi/boot/ipxe.efi"],
    ["./a//b/./c", "a/b/c"],
  ])("normalises %s", (name, rel) => expect(normaliseName(name)).toBe(rel));
  it.each(["..", "../x", "a/../../x", "a\\..\\x", "x\0y", "/", "./"])("refuses %j", (name) => {
    expect(() => normaliseName(name)).toThrow();
  });
});

describe("netascii", () => {
  it("turns LF into CR LF and CR into CR NUL", () => {
    expect(toNetascii(Buffer.from("a\nb\rc\r\n"))).toEqual(Buffer.from("a\r\nb\r\0c\r\0\r\n", "latin1"));
  });
});

describe("default roots", () => {
  it("prefer the project's ipxe/bin, else Debian's /usr/lib/ipxe staged as plain files", async () => {
    const { dir, cleanup } = await tempDir("tftp-roots");
    try {
      const stage = join(dir, "stage");
      expect(await tftpRoots([], stage, dir)).toEqual([stage]);
      // Debian's ipxe.efi is a link to /boot; the staged copy is a regular file with the same bytes.
      expect((await lstat("/usr/lib/ipxe/ipxe.efi")).isSymbolicLink()).toBe(true);
      expect((await lstat(join(stage, "ipxe.efi"))).isFile()).toBe(true);
      expect(await readFile(join(stage, "ipxe.efi"))).toEqual(await readFile("/usr/lib/ipxe/ipxe.efi"));
      await mkdir(join(dir, "ipxe", "bin"), { recursive: true });
      expect(await tftpRoots([], stage, dir)).toEqual([join(dir, "ipxe", "bin")]);
      expect(await tftpRoots(["rel/dir", "/abs"], stage, dir)).toEqual([resolve("rel/dir"), "/abs"]);
    } finally {
      await cleanup();
    }
  });
  it("Debian's ipxe package provides the boot files there", async () => {
    for (const f of ["undionly.kpxe", "ipxe.efi", "snponly.efi"]) await access(join("/usr/lib/ipxe", f));
  });
});

describe("FileCatalog", () => {
  it("reads a small file once and shares the bytes; a change on disk is picked up", async () => {
    const { dir, cleanup } = await tempDir("tftp-cache");
    try {
      await writeFile(join(dir, "a.bin"), "first");
      const catalog = new FileCatalog([dir], { cacheMaxFileBytes: 1024, cacheMaxBytes: 4096 });
      const [one, two] = await Promise.all([catalog.open("a.bin"), catalog.open("/a.bin")]);
      expect("content" in one && "content" in two && one.content === two.content).toBe(true);
      await writeFile(join(dir, "a.bin"), "second, longer");
      const three = await catalog.open("a.bin");
      expect("content" in three && three.content.toString()).toBe("second, longer");
    } finally {
      await cleanup();
    }
  });

  it("notices a cached file replaced on disk, and refuses it once it is a link out of the root", async () => {
    const { dir, cleanup } = await tempDir("tftp-cache-swap");
    try {
      const root = join(dir, "root");
      await mkdir(root);
      await writeFile(join(dir, "secret"), "secret");
      await writeFile(join(root, "a.bin"), "first");
      const catalog = new FileCatalog([root], { cacheMaxFileBytes: 1024, cacheMaxBytes: 4096 });
      const one = await catalog.open("a.bin");
      expect("content" in one && one.content.toString()).toBe("first");
      // Same size and a fresh inode, as an installer that writes a new file and renames it does.
      await writeFile(join(root, "new.tmp"), "other");
      await rename(join(root, "new.tmp"), join(root, "a.bin"));
      const two = await catalog.open("a.bin");
      expect("content" in two && two.content.toString()).toBe("other");
      await rm(join(root, "a.bin"));
      await symlink(join(dir, "secret"), join(root, "a.bin"));
      await expect(catalog.open("a.bin")).rejects.toMatchObject({ code: 2 });
    } finally {
      await cleanup();
    }
  });

  it("streams a file above the cache limit, and searches roots in order", async () => {
    const { dir, cleanup } = await tempDir("tftp-stream");
    try {
      await mkdir(join(dir, "r1"));
      await mkdir(join(dir, "r2"));
      await writeFile(join(dir, "r2", "big.bin"), Buffer.alloc(2048, 1));
      const catalog = new FileCatalog([join(dir, "missing"), join(dir, "r1"), join(dir, "r2")], {
        cacheMaxFileBytes: 1024,
        cacheMaxBytes: 4096,
      });
      const opened = await catalog.open("big.bin");
      expect("handle" in opened && opened.size).toBe(2048);
      if ("handle" in opened) await opened.handle.close();
      await expect(catalog.open("nope")).rejects.toMatchObject({ code: 1 });
    } finally {
      await cleanup();
    }
  });
});

describe("streamed blocks", () => {
  async function blocksOf(content: Buffer, blksize: number, chunk: number, netascii: boolean): Promise<Buffer[]> {
    const { dir, cleanup } = await tempDir("tftp-blocks");
    try {
      await writeFile(join(dir, "f"), content);
      const source = handleBlocks(await open(join(dir, "f")), blksize, chunk, netascii ? toNetascii : undefined);
      const blocks: Buffer[] = [];
      for (;;) {
        const b = await source.next();
        blocks.push(Buffer.from(b));
        if (b.length < blksize) break;
      }
      await source.close();
      return blocks;
    } finally {
      await cleanup();
    }
  }

  it("cuts a file into full blocks and a final empty one when the size is an exact multiple", async () => {
    const content = randomBytes(100 * 7);
    const blocks = await blocksOf(content, 100, 300, false);
    expect(blocks.map((b) => b.length)).toEqual([100, 100, 100, 100, 100, 100, 100, 0]);
    expect(Buffer.concat(blocks).equals(content)).toBe(true);
  });

  it("converts netascii across chunk boundaries (blocks straddle chunks)", async () => {
    const content = Buffer.from("ab\ncd\r\n\r".repeat(200));
    const blocks = await blocksOf(content, 50, 64, true);
    expect(Buffer.concat(blocks).equals(toNetascii(content))).toBe(true);
    expect(blocks.slice(0, -1).every((b) => b.length === 50)).toBe(true);
    expect(blocks.at(-1)!.length).toBeLessThan(50);
  });
});
