/**
 * Transfer slots against the real server: per-client cap, stalled transfers giving way, the global cap
 * shared fairly, the client's timeout capped and idle transfers ended. Peers bind different loopback
 * addresses (all of 127.0.0.0/8 is local) to stand for different hosts; the legitimate client is curl.
 */
import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.ts";
import { encodeRequest, Opcode } from "../../src/tftp/packet.ts";
import { idle, RawPeer, run, sha256, startServer, tempDir } from "./helpers.ts";

let dir: string;
let root: string;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir("tftp-slots"));
  root = join(dir, "root");
  await mkdir(root);
  await writeFile(join(root, "ipxe.bin"), randomBytes(64 * 1024 + 3));
});
afterAll(async () => cleanup?.());

const rrq = (options: Record<string, string> = {}) =>
  encodeRequest({ op: Opcode.RRQ, filename: "ipxe.bin", mode: "octet", options: new Map(Object.entries(options)) });

/** `n` silent peers from `address`, each with one request sent; waits until each has its first answer. */
async function silentPeers(address: string, n: number, port: number, options: Record<string, string> = {}) {
  const peers = await Promise.all(Array.from({ length: n }, () => RawPeer.open(address)));
  for (const p of peers) p.send(rrq(options), port);
  const first = await Promise.all(peers.map((p) => p.next(2000)));
  return { peers, first };
}

async function curl(port: number, out: string): Promise<void> {
  await run("curl", ["-sS", "--max-time", "20", "-o", out, `tftp://127.0.0.1:${port}/ipxe.bin`], 30_000);
  expect(await sha256(out)).toBe(await sha256(join(root, "ipxe.bin")));
}

describe("transfer slots", () => {
  it("refuses a maxIdleMs shorter than a retransmission timeout, naming the key", () => {
    expect(() => loadConfig({ env: {}, overrides: { tftp: { maxIdleMs: 500 } } })).toThrow(/tftp\.maxIdleMs: must be/);
    expect(() => loadConfig({ env: {}, overrides: { tftp: { maxTimeoutMs: 30_000, maxIdleMs: 20_000 } } })).toThrow(
      /tftp\.maxIdleMs/,
    );
  });

  it("caps one client's transfers; another host is served meanwhile", async () => {
    // A long timeout: nothing stalls during the test, so nothing may be replaced.
    const { server, port } = await startServer([root], { timeoutMs: 10_000, maxTransfersPerClient: 3 });
    const { peers, first } = await silentPeers("127.0.0.2", 3, port);
    const extra = await RawPeer.open("127.0.0.2");
    try {
      expect(first.map((f) => f?.packet.op)).toEqual([Opcode.DATA, Opcode.DATA, Opcode.DATA]);
      extra.send(rrq(), port);
      expect(await extra.next(300)).toBeUndefined();
      expect(server.stats()).toMatchObject({ active: 3, dropped: 1, evicted: 0 });
      await curl(port, join(dir, "other-host"));
    } finally {
      for (const p of [...peers, extra]) p.close();
      await server.close();
    }
  });

  it("at its cap, a client's new request replaces its own most stalled transfer, which is told and not recorded", async () => {
    const { server, port, events } = await startServer([root], { timeoutMs: 200, maxTransfersPerClient: 2 });
    const { peers } = await silentPeers("127.0.0.2", 2, port);
    const again = await RawPeer.open("127.0.0.2");
    try {
      // Past one timeout without an ACK: both are stalled.
      await new Promise((r) => setTimeout(r, 400));
      again.send(rrq(), port);
      expect((await again.next(2000))?.packet).toMatchObject({ op: Opcode.DATA, block: 1 });
      expect(server.stats()).toMatchObject({ active: 2, evicted: 1 });
      // The replaced transfer's client gets an error (after its retransmissions).
      const told = await Promise.all(
        peers.map(async (p) => {
          for (;;) {
            const got = await p.next(1000);
            if (!got || got.packet.op === Opcode.ERROR) return got?.packet.op;
          }
        }),
      );
      expect(told.filter((op) => op === Opcode.ERROR)).toHaveLength(1);
      expect(events.of("tftp.failed")).toHaveLength(0);
    } finally {
      for (const p of [...peers, again]) p.close();
      await server.close();
    }
  });

  it("a full server gives a stalled slot of the heaviest client to a new host", async () => {
    const { server, port } = await startServer([root], {
      timeoutMs: 200,
      maxTransfers: 4,
      maxTransfersPerClient: 3,
    });
    const a = await silentPeers("127.0.0.2", 3, port);
    const b = await silentPeers("127.0.0.3", 1, port);
    try {
      expect(server.stats().active).toBe(4);
      await new Promise((r) => setTimeout(r, 400));
      await curl(port, join(dir, "fair"));
      expect(server.stats().evicted).toBe(1);
      // The slot came from 127.0.0.2, the heaviest: 127.0.0.3's only transfer is still running.
      const bPeer = b.peers[0]!;
      let bEnded = false;
      for (let got = await bPeer.next(50); got; got = await bPeer.next(50)) bEnded ||= got.packet.op === Opcode.ERROR;
      expect(bEnded).toBe(false);
    } finally {
      for (const p of [...a.peers, ...b.peers]) p.close();
      await server.close();
    }
  });

  it("refuses a 255 s timeout and ends a silent transfer after maxIdleMs, whatever retries are left", async () => {
    // Retransmissions at 200 and 600 ms; the next would be at 1400 ms, past maxIdleMs, so that is the end.
    const { server, port, events } = await startServer([root], {
      timeoutMs: 200,
      maxTimeoutMs: 1000,
      maxIdleMs: 1000,
      retries: 50,
    });
    const peer = await RawPeer.open("127.0.0.2");
    try {
      peer.send(rrq({ timeout: "255", blksize: "1024" }), port);
      const oack = await peer.next();
      expect(oack?.packet.op).toBe(Opcode.OACK);
      expect(oack?.packet.op === Opcode.OACK && Object.fromEntries(oack.packet.options)).toEqual({ blksize: "1024" });
      // Never acknowledged: the OACK is repeated, then the transfer ends with an error to the client.
      let last = oack;
      let oacks = 0;
      while (last && last.packet.op === Opcode.OACK) {
        oacks++;
        last = await peer.next(3000);
      }
      expect(last?.packet).toMatchObject({ op: Opcode.ERROR, message: "no progress for 1000 ms" });
      expect(oacks).toBe(3);
      await idle(server, 1000);
      expect(events.of("tftp.failed")[0]?.detail).toMatchObject({ error: "no progress for 1000 ms" });
    } finally {
      peer.close();
      await server.close();
    }
  });
});
