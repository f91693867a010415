/**
 * SIGTERM with hostile HTTP clients (issue item 8), against a real `kindling serve`: a rate-limited download
 * (curl --limit-rate) and a client that never finishes its request headers no longer hold the process; it
 * exits within the shutdown grace plus a margin, while a transfer that fits in the grace still completes.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { freePort, TEST_TOKEN, tempDir } from "../helpers/kindling.ts";
import { loopbackFlags, type ServeProcess, startServe } from "./serve-process.ts";

const work = tempDir("kindling-hostile-shutdown-");
const procs: (ServeProcess | { child: ChildProcess; exited: Promise<unknown> })[] = [];
afterEach(async () => {
  for (const p of procs.splice(0)) {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
    await p.exited;
  }
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A data dir whose /assets holds `name` with `size` random bytes. */
function dataDirWith(name: string, size: number): { dataDir: string; bytes: Buffer } {
  const dataDir = join(work, `data-${procs.length}-${Date.now()}`);
  mkdirSync(join(dataDir, "assets"), { recursive: true });
  const bytes = randomBytes(size);
  writeFileSync(join(dataDir, "assets", name), bytes);
  return { dataDir, bytes };
}

function curl(args: string[]) {
  const child = spawn("curl", args, { stdio: ["ignore", "ignore", "pipe"] });
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  procs.push({ child, exited });
  return { child, exited };
}

async function until(what: string, fn: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const sizeOf = (f: string) => statSync(f, { throwIfNoEntry: false })?.size ?? 0;

/** Waits for exit at most `ms`; the elapsed time and exit code, or null when it did not exit in time. */
async function exitWithin(p: ServeProcess, ms: number): Promise<{ code: number | null; ms: number } | null> {
  const t0 = Date.now();
  const timeout = new Promise<"late">((r) => setTimeout(() => r("late"), ms).unref());
  const code = await Promise.race([p.exited, timeout]);
  return code === "late" ? null : { code, ms: Date.now() - t0 };
}

describe("kindling serve on SIGTERM with slow HTTP clients", () => {
  it("closes a rate-limited download and a never-finished request at the grace, then exits 0", async () => {
    const GRACE = 2;
    const { dataDir } = dataDirWith("big.bin", 16 << 20);
    const port = await freePort();
    const serve = startServe(loopbackFlags(dataDir, port, ["--api-token", TEST_TOKEN]), {
      env: { KINDLING_SHUTDOWN_GRACE_SECONDS: String(GRACE) },
    });
    procs.push(serve);
    await serve.waitFor("HTTP listening");

    // 100 KiB/s: 16 MiB would take close to three minutes.
    const out = join(work, "slow.out");
    const slow = curl(["-sS", "--limit-rate", "100K", "-o", out, `http://127.0.0.1:${port}/assets/big.bin`]);
    // Request line and one header, then silence: the server waits for the rest (headersTimeout is 60 s).
    const stuck = connect(port, "127.0.0.1");
    const stuckClosed = new Promise<void>((r) => stuck.once("close", () => r()));
    stuck.on("error", () => {});
    stuck.write("GET /healthz HTTP/1.1\r\nHost: kindling\r\n");
    await until("the download to start", () => sizeOf(out) > 0, 10_000);

    serve.child.kill("SIGTERM");
    const exit = await exitWithin(serve, (GRACE + 8) * 1000);
    expect(exit, `still running ${GRACE + 8} s after SIGTERM:\n${serve.output()}`).not.toBeNull();
    expect(exit!.code).toBe(0);
    // Bounded by the grace plus a margin for a loaded machine, and it did give the transfers the grace.
    expect(exit!.ms).toBeLessThan((GRACE + 4) * 1000);
    expect(exit!.ms).toBeGreaterThanOrEqual(GRACE * 1000 - 500);
    expect(serve.output()).toContain("shutdown grace over: closing the HTTP connections still open");
    // The client that never finished its headers was disconnected. (curl may still be reading what the kernel
    // had buffered for it before the socket closed; that no longer involves Kindling.)
    await until("the stuck client to be disconnected", () => stuck.closed, 5_000);
    await stuckClosed;
    slow.child.kill();
    expect(sizeOf(out)).toBeLessThan(16 << 20);
  }, 60_000);

  it("lets a download that fits in the grace (default 5 s) finish byte for byte", async () => {
    const { dataDir, bytes } = dataDirWith("mid.bin", 3 << 20);
    const port = await freePort();
    const serve = startServe(loopbackFlags(dataDir, port, ["--api-token", TEST_TOKEN]));
    procs.push(serve);
    await serve.waitFor("HTTP listening");
    const out = join(work, "mid.out");
    // About 1.5 s at 2 MiB/s: well inside the default grace.
    const dl = curl(["-sS", "--fail", "--limit-rate", "2M", "-o", out, `http://127.0.0.1:${port}/assets/mid.bin`]);
    await until("the download to start", () => sizeOf(out) > 0, 10_000);
    serve.child.kill("SIGTERM");
    expect(await dl.exited).toBe(0);
    expect(readFileSync(out).equals(bytes)).toBe(true);
    const exit = await exitWithin(serve, 15_000);
    expect(exit?.code).toBe(0);
    expect(serve.output()).not.toContain("shutdown grace over");
  }, 60_000);

  it("a bad shutdownGraceSeconds stops start-up naming the key", async () => {
    const serve = startServe(loopbackFlags(tempDir(), await freePort(), ["--shutdown-grace-seconds", "-1"]));
    procs.push(serve);
    expect(await serve.exited).toBe(1);
    expect(serve.output()).toMatch(/invalid config: shutdownGraceSeconds: .* \(from flag --shutdown-grace-seconds\)/);
  }, 30_000);
});
