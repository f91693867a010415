/**
 * TFTP fuzzing against the real server in its own process on loopback. KINDLING_FUZZ_PACKETS (default
 * 200,000) seeded hostile packets (test/tftp/mutate.ts) from 12 sockets on each of 16 loopback addresses: to the
 * listening port, and to transfer ports learned from the server's answers (from the transfer's own client
 * and from strangers); transfers that start are driven on by mostly-right ACKs. The seed is
 * KINDLING_FUZZ_SEED or random, and printed. Afterwards curl, atftp and tftp-hpa get exact bytes, nothing
 * was logged at error level or on stderr, the process is alive, every slot is free again and the server
 * shuts down cleanly.
 */
import { createSocket, type Socket } from "node:dgram";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TftpConfigSchema } from "../../src/tftp/config.ts";
import { Opcode } from "../../src/tftp/packet.ts";
import { prng } from "../helpers/prng.ts";
import { hostAddresses } from "../tftp/flood.ts";
import { tempDir } from "../tftp/helpers.ts";
import { Mutator } from "../tftp/mutate.ts";
import { type ClientName, fetchExact } from "../tftp/real-clients.ts";
import { ServerProcess } from "../tftp/server-process.ts";

const PACKETS = Number(process.env.KINDLING_FUZZ_PACKETS ?? 200_000);
const SEED = Number(process.env.KINDLING_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 32));
// Bounded in time as well as count.
const TIME_LIMIT_MS = Math.max(90_000, PACKETS * 0.5);
/** Packets sent between two checks that the listening socket has read everything before them. */
const BATCH = 50;
/** ...or this many bytes to the listening port, so that a batch fits its receive buffer (about 208 KiB). */
const BATCH_BYTES = 64 * 1024;
/** More than maxTransfersPerClient, so the per-client cap and eviction are in play. */
const SOCKETS_PER_HOST = 12;
const FILES = ["small.bin", "mid.bin", "sub/deep.bin", "empty.bin"];
const DEFAULTS = TftpConfigSchema.parse({});

let dir: string;
let root: string;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir("fuzz-tftp"));
  root = join(dir, "root");
  await mkdir(join(root, "sub"), { recursive: true });
  const rand = prng(SEED ^ 0x5eed);
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(rand() * 256)));
  await writeFile(join(root, "small.bin"), bytes(1500));
  await writeFile(join(root, "mid.bin"), bytes(96 * 1024 + 5));
  await writeFile(join(root, "sub/deep.bin"), bytes(512 * 3));
  await writeFile(join(root, "empty.bin"), "");
});
afterAll(async () => cleanup?.());

function bind(address: string): Promise<Socket> {
  const s = createSocket("udp4");
  return new Promise((resolve, reject) => {
    s.once("error", reject);
    s.bind(0, address, () => {
      s.off("error", reject);
      // ICMP errors from closed transfer ports are part of the game.
      s.on("error", () => {});
      resolve(s);
    });
  });
}

describe("TFTP fuzzing", () => {
  it(`${PACKETS} seeded hostile packets, then real clients get exact bytes`, {
    timeout: TIME_LIMIT_MS + 90_000,
  }, async () => {
    console.log(`TFTP fuzz: seed ${SEED} (KINDLING_FUZZ_SEED=${SEED} replays it), ${PACKETS} packets`);
    const server = await ServerProcess.start([root]);
    const rand = prng(SEED);
    const m = new Mutator(rand, FILES);
    const sockets = await Promise.all(
      hostAddresses(16, 2 * 65536 + 1).flatMap((a) => Array.from({ length: SOCKETS_PER_HOST }, () => bind(a))),
    );
    const probe = await bind("127.0.0.3");
    /** Transfer ports seen in the server's answers, most recent last. */
    const tids: number[] = [];
    let sent = 0;
    let answered = 0;
    let lostProbes = 0;
    const send = (s: Socket, packet: Buffer, port: number) => {
      sent++;
      s.send(packet, port, "127.0.0.1");
    };
    for (const s of sockets) {
      s.on("message", (msg, from) => {
        answered++;
        if (from.port === server.port || msg.length < 4) return;
        if (tids.length >= 256) tids.shift();
        tids.push(from.port);
        const op = msg.readUInt16BE(0);
        // Drive transfers on, mostly correctly, while the budget lasts.
        if ((op === Opcode.OACK || op === Opcode.DATA) && sent < PACKETS && m.chance(0.6))
          send(s, m.answer(op === Opcode.OACK ? 0 : msg.readUInt16BE(2)), from.port);
      });
    }
    let closed = false;
    const closeAll = () => {
      if (closed) return;
      closed = true;
      for (const s of [...sockets, probe]) s.close();
    };
    const started = Date.now();
    try {
      while (sent < PACKETS && Date.now() - started < TIME_LIMIT_MS) {
        for (let i = 0, bytes = 0; i < BATCH && bytes < BATCH_BYTES; i++) {
          const s = m.pick(sockets);
          if (tids.length > 0 && m.chance(0.3)) send(s, m.forTransfer(), m.pick(tids));
          else {
            const packet = m.forServer();
            bytes += packet.length;
            send(s, packet, server.port);
          }
        }
        // An unknown opcode is answered with error 4 once everything sent before it has been read.
        const answer = new Promise<boolean>((resolve) => {
          // A lost probe (the kernel drops what overflows the server's receive buffer) costs little.
          const timer = setTimeout(() => resolve(false), 250);
          probe.once("message", () => {
            clearTimeout(timer);
            resolve(true);
          });
        });
        probe.send(Buffer.from([0, 99]), server.port, "127.0.0.1");
        if (!(await answer)) lostProbes++;
      }
      const elapsed = Date.now() - started;

      console.log(
        `TFTP fuzz: ${sent} packets in ${elapsed} ms, ${answered} answers, ${lostProbes} flow-control probes lost, server ${JSON.stringify(await server.stats())}`,
      );
      expect(sent).toBeGreaterThanOrEqual(PACKETS);
      closeAll();

      const clients: ClientName[] = ["curl", "atftp", "tftp-hpa"];
      for (const file of FILES) {
        for (const client of clients) {
          // Debian 12's curl fails every 0-byte TFTP download (curl#11332), against any server.
          if (file === "empty.bin" && client === "curl") continue;
          await fetchExact(client, server.port, root, file, join(dir, `out-${client}`), 20);
        }
      }
      // No slot leaked: the fuzzer's transfers end (its sockets are closed, or maxIdleMs passes).
      const after = await server.idle(DEFAULTS.maxIdleMs + 10_000);
      expect(after.malformed).toBeGreaterThan(0);
      expect(after.transfers).toBeGreaterThan(0);
      expect(server.alive).toBe(true);
      expect(server.errors).toEqual([]);
    } finally {
      closeAll();
      const code = await server.stop();
      // A clean exit: close() waits for every transfer, so a leaked one would have held it.
      expect(code).toBe(0);
    }
  });
});
