import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { idle, run, sha256, startServer, tempDir } from "./helpers.ts";
import { LossyRelay } from "./lossy-relay.ts";

let dir: string;
let root: string;
let out: string;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir("tftp-load"));
  root = join(dir, "root");
  out = join(dir, "out");
  await mkdir(root);
  await mkdir(out);
  await writeFile(join(root, "quarter.bin"), randomBytes(256 * 1024 + 77));
  await writeFile(join(root, "ipxe.bin"), randomBytes(128 * 1024 + 5));
});
afterAll(async () => cleanup?.());

describe("through a lossy relay (drops, duplicates, reorders both ways)", () => {
  it("every transfer completes with the right checksum", async () => {
    // A short server timeout keeps recovery quick; the backoff still leaves the clients' own 1 s timers room.
    const { server } = await startServer([root], { timeoutMs: 100, retries: 10 });
    const relay = await LossyRelay.start(server.address.port, { drop: 0.03, duplicate: 0.03, reorder: 0.03 }, 42);
    const port = String(relay.port);
    const want = await sha256(join(root, "quarter.bin"));
    const atftp = (local: string, options: string[]) =>
      run("atftp", [
        "--tftp-timeout",
        "1",
        ...options.flatMap((o) => ["--option", o]),
        "-g",
        "-r",
        "quarter.bin",
        "-l",
        local,
        "127.0.0.1",
        port,
      ]);
    // tftp-hpa's client takes its retransmit interval from a command, so it is fed a script.
    const hpa = (local: string) =>
      run("sh", ["-c", `printf 'mode octet\\nrexmt 1\\nget quarter.bin ${local}\\nquit\\n' | tftp 127.0.0.1 ${port}`]);
    try {
      const jobs: [string, Promise<unknown>][] = [
        ["atftp lock-step", atftp(join(out, "a1"), ["blksize 1468"])],
        ["atftp lock-step 512", atftp(join(out, "a2"), [])],
        ["atftp window 8", atftp(join(out, "a3"), ["blksize 1468", "windowsize 8"])],
        ["atftp window 16", atftp(join(out, "a4"), ["blksize 512", "windowsize 16"])],
        ["tftp-hpa", hpa(join(out, "a5"))],
      ];
      await Promise.all(jobs.map(([, p]) => p));
      for (const f of ["a1", "a2", "a3", "a4", "a5"]) expect(await sha256(join(out, f)), f).toBe(want);
      // The relay really did damage traffic: otherwise this test proves nothing.
      expect(relay.counts.dropped).toBeGreaterThan(0);
      expect(relay.counts.duplicated).toBeGreaterThan(0);
      expect(relay.counts.reordered).toBeGreaterThan(0);
    } finally {
      relay.close();
      await server.close();
    }
  });
});

describe("a rack powering on", () => {
  it("200 concurrent transfers all finish correctly", async () => {
    // One address stands for the whole rack here, so the per-client cap is lifted to let it run 200 at once.
    const { server, events } = await startServer([root], { maxTransfersPerClient: 200 });
    const n = 200;
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, server.stats().active)), 1);
    try {
      const args = ["-sS", "--parallel", "--parallel-immediate", "--parallel-max", String(n)];
      for (let i = 0; i < n; i++)
        args.push("-o", join(out, `p${i}`), `tftp://127.0.0.1:${server.address.port}/ipxe.bin`);
      await run("curl", args);
      await idle(server);
      const want = await sha256(join(root, "ipxe.bin"));
      for (let i = 0; i < n; i++) expect(await sha256(join(out, `p${i}`))).toBe(want);
      expect(server.stats()).toMatchObject({ transfers: n, failed: 0, active: 0 });
      expect(events.of("tftp.transfer")).toHaveLength(n);
      console.log(`peak concurrent transfers: ${peak}`);
      expect(peak).toBeGreaterThan(1);
    } finally {
      clearInterval(sampler);
      await server.close();
    }
  });
});
