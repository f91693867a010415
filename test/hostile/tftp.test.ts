/**
 * A hostile host against Kindling's TFTP server (issue 13, item 3), with the server in its own process on
 * loopback and its default limits. The attacker opens 2,000 read requests asking `timeout=255` and never
 * answers; real clients (curl, atftp, tftp-hpa) must still get exact bytes promptly, the slots must drain
 * within a bounded time, and the server's RSS must stay bounded. Loopback aliases (127.0.0.0/8 is all
 * local) stand for other hosts; the real clients always send from 127.0.0.1.
 */
import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TftpConfigSchema } from "../../src/tftp/config.ts";
import { Flood, hostAddresses, readRequest } from "../tftp/flood.ts";
import { tempDir } from "../tftp/helpers.ts";
import { type ClientName, fetchExact } from "../tftp/real-clients.ts";
import { ServerProcess } from "../tftp/server-process.ts";

const DEFAULTS = TftpConfigSchema.parse({});
/** The server's resident memory stays under this during every attack (it starts near 100 MiB: Node + tsx). */
const RSS_BOUND = 256 * 1024 * 1024;
/** A legitimate fetch of a 256 KiB file under attack: generous, but hours of lock-out (the bug) fail it. */
const FETCH_BOUND_S = 10;
const CLIENTS: ClientName[] = ["curl", "atftp", "tftp-hpa"];
const ASK = { timeout: "255", tsize: "0", blksize: "1468" };

let dir: string;
let root: string;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir("hostile-tftp"));
  root = join(dir, "root");
  await mkdir(root);
  await writeFile(join(root, "ipxe.bin"), randomBytes(256 * 1024 + 11));
});
afterAll(async () => cleanup?.());

/** Samples the server's RSS every 100 ms until stopped; returns the peak. */
function rssPeak(server: ServerProcess): { stop: () => Promise<number> } {
  let peak = 0;
  let running = true;
  const loop = (async () => {
    while (running && server.alive) {
      peak = Math.max(peak, (await server.stats()).rss);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return peak;
    },
  };
}

async function everyClientServed(server: ServerProcess, tag: string): Promise<void> {
  for (const client of CLIENTS) {
    const ms = await fetchExact(client, server.port, root, "ipxe.bin", join(dir, `${tag}-${client}`), FETCH_BOUND_S);
    console.log(`${tag}: ${client} got its file in ${Math.round(ms)} ms`);
  }
}

describe("a hostile host against TFTP", () => {
  it("2,000 silent requests asking timeout=255 from one host: others are served, slots drain, RSS bounded", {
    timeout: 120_000,
  }, async () => {
    const server = await ServerProcess.start([root]);
    const flood = await Flood.open(["127.0.0.2"], 2000);
    const rss = rssPeak(server);
    try {
      await flood.sendAll(readRequest("ipxe.bin", ASK), server.port);
      // The attacker holds its per-client share, not the server.
      const during = await server.stats();
      expect(during.active).toBeLessThanOrEqual(DEFAULTS.maxTransfersPerClient);
      expect(during.dropped).toBeGreaterThanOrEqual(2000 - DEFAULTS.maxTransfersPerClient);
      // Real clients from another address, while the attacker repeats every request.
      const again = flood.sendAll(readRequest("ipxe.bin", { ...ASK, blksize: "512" }), server.port);
      await everyClientServed(server, "other host during the attack");
      await again;
      // Silent, sockets still open: no ICMP error frees anything; maxIdleMs must.
      const drained = await server.idle(DEFAULTS.maxIdleMs + 10_000);
      // Dropped requests leave no trace in the events; only transfers that ran are recorded.
      expect(drained.events).toBeLessThan(50);
      const peak = await rss.stop();
      console.log(`peak RSS ${Math.round(peak / 2 ** 20)} MiB`);
      expect(peak).toBeLessThan(RSS_BOUND);
      expect(server.alive).toBe(true);
      expect(server.errors).toEqual([]);
    } finally {
      flood.close();
      await rss.stop();
      await server.stop();
    }
  });

  it("the attacker's own address is served again promptly once the attack stops", { timeout: 120_000 }, async () => {
    const server = await ServerProcess.start([root]);
    // The attacker sends from 127.0.0.1, the address the real clients use.
    const flood = await Flood.open(["127.0.0.1"], 2000);
    try {
      await flood.sendAll(readRequest("ipxe.bin", ASK), server.port);
      expect((await server.stats()).active).toBe(DEFAULTS.maxTransfersPerClient);
      // It goes silent with its sockets open. Once its transfers are one timeout old they count as stalled,
      // and give way to the next request from that address rather than holding it off for maxIdleMs.
      await new Promise((r) => setTimeout(r, DEFAULTS.timeoutMs));
      await everyClientServed(server, "attacker's address after the attack");
      const s = await server.stats();
      expect(s.evicted).toBeGreaterThan(0);
      expect(server.alive).toBe(true);
      expect(server.errors).toEqual([]);
    } finally {
      flood.close();
      await server.stop();
    }
  });

  it("2,000 silent requests from 250 hosts fill the server; a new host is still served", {
    timeout: 120_000,
  }, async () => {
    const server = await ServerProcess.start([root]);
    const hosts = hostAddresses(DEFAULTS.maxTransfers / DEFAULTS.maxTransfersPerClient);
    const flood = await Flood.open(hosts, DEFAULTS.maxTransfersPerClient);
    const rss = rssPeak(server);
    try {
      await flood.sendAll(readRequest("ipxe.bin", ASK), server.port, { repeats: 5 });
      // Every slot is taken (the last requests may still be opening the file when this is asked).
      const deadline = Date.now() + 10_000;
      while ((await server.stats()).active < DEFAULTS.maxTransfers && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      expect((await server.stats()).active).toBe(DEFAULTS.maxTransfers);
      await everyClientServed(server, "new host on a full server");
      // The first client took a stalled slot; the next ones found the slot it left when it finished.
      expect((await server.stats()).evicted).toBeGreaterThanOrEqual(1);
      await server.idle(DEFAULTS.maxIdleMs + 10_000);
      const peak = await rss.stop();
      console.log(`peak RSS ${Math.round(peak / 2 ** 20)} MiB`);
      expect(peak).toBeLessThan(RSS_BOUND);
      expect(server.alive).toBe(true);
      expect(server.errors).toEqual([]);
    } finally {
      flood.close();
      await rss.stop();
      await server.stop();
    }
  });
});
