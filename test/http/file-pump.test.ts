import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { connect } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChunkPool, pumpFile } from "../../src/http/file-pump.ts";
import { type Running, startTestKindling, tempDir } from "../helpers/kindling.ts";

const run = promisify(execFile);
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
// Several chunks and a ragged tail, so reads, buffer reuse and the last short read are all exercised.
const SMALL_CHUNK = 64 * 1024;
const content = randomBytes(10 * SMALL_CHUNK + 1234);
const dir = tempDir();
const file = join(dir, "big.bin");
writeFileSync(file, content);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Descriptors this process holds open on `file`. */
const openOnFile = () =>
  readdirSync("/proc/self/fd").filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === file;
    } catch {
      return false;
    }
  }).length;

describe("pumpFile with a pool of 2 chunks", () => {
  let server: Server;
  let url: string;
  const pool = new ChunkPool(SMALL_CHUNK, 2);
  beforeAll(async () => {
    server = createServer(async (req, res) => {
      const start = Number(new URL(req.url!, "http://x").searchParams.get("start") ?? 0);
      res.writeHead(200, { "Content-Length": String(content.length - start) });
      await pumpFile(await open(file), res, start, content.length - start, pool).catch(() => res.destroy());
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it("serves the exact bytes from any offset, to many clients taking turns for buffers", async () => {
    const starts = [0, 1, SMALL_CHUNK - 1, SMALL_CHUNK, 5 * SMALL_CHUNK + 17, content.length - 1];
    const bodies = await Promise.all(
      starts.map((s) => run("curl", ["-sf", `${url}/?start=${s}`], { encoding: "buffer", maxBuffer: 1 << 24 })),
    );
    for (const [i, s] of starts.entries()) expect(sha(bodies[i]!.stdout)).toBe(sha(content.subarray(s)));
  });

  it("clients that hang up mid-transfer give their buffers and the file back", async () => {
    const port = Number(new URL(url).port);
    for (let i = 0; i < 4; i++) {
      await new Promise<void>((resolve) => {
        const sock = connect(port, "127.0.0.1", () => sock.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        let got = 0;
        // Bounded: with a leaked buffer the server might never send that much.
        setTimeout(() => sock.destroy(), 2000);
        sock.on("data", (d) => {
          got += d.length;
          if (got > SMALL_CHUNK) sock.destroy();
        });
        sock.on("close", () => resolve());
      });
    }
    // Both buffers must be back: a leaked one would leave the next download waiting forever.
    const { stdout } = await run("curl", ["-sf", "--max-time", "20", url], { encoding: "buffer", maxBuffer: 1 << 24 });
    expect(sha(stdout)).toBe(sha(content));
    for (let i = 0; i < 50 && openOnFile() > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(openOnFile()).toBe(0);
  });
});

describe("/assets with files of many chunks", () => {
  let k: Running;
  const big = randomBytes(3 * (1 << 20) + 4321);
  beforeAll(async () => {
    k = await startTestKindling();
    mkdirSync(join(k.dataDir, "assets"), { recursive: true });
    writeFileSync(join(k.dataDir, "assets", "big.bin"), big);
  });
  afterAll(() => k.stop());

  it("curl gets the whole file, and a range across chunk boundaries, byte for byte", async () => {
    const whole = await run("curl", ["-sf", "-D", "-", "-o", join(dir, "whole"), `${k.url}/assets/big.bin`]);
    expect(whole.stdout).toMatch(new RegExp(`content-length: ${big.length}\\r`, "i"));
    expect(sha(readFileSync(join(dir, "whole")))).toBe(sha(big));
    const [from, to] = [(1 << 20) - 5, 2 * (1 << 20) + 5];
    const part = await run("curl", ["-sf", "-r", `${from}-${to}`, `${k.url}/assets/big.bin`], {
      encoding: "buffer",
      maxBuffer: 1 << 24,
    });
    expect(sha(part.stdout)).toBe(sha(big.subarray(from, to + 1)));
  });

  it("a range answer is counted as the 206 it was", async () => {
    await run("curl", ["-sf", "-o", "/dev/null", "-r", "0-9", `${k.url}/assets/big.bin`]);
    const metrics = await (await fetch(`${k.url}/metrics`)).text();
    expect(metrics).toMatch(/kindling_http_requests_total\{[^}]*route="\/assets\/\*"[^}]*status="206"[^}]*\} [1-9]/);
  });

  it("a download cut short leaves the server serving the next one", async () => {
    await run("curl", [
      "-s",
      "--max-filesize",
      "1",
      "--limit-rate",
      "100k",
      "--max-time",
      "1",
      `${k.url}/assets/big.bin`,
    ]).catch(() => {});
    const { stdout } = await run("curl", ["-sf", `${k.url}/assets/big.bin`], {
      encoding: "buffer",
      maxBuffer: 1 << 24,
    });
    expect(sha(stdout)).toBe(sha(big));
  });
});
