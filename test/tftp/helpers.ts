import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { createReadStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../../src/log.ts";
import type { EventInput, EventSink } from "../../src/model/event.ts";
import { type TftpConfig, TftpConfigSchema } from "../../src/tftp/config.ts";
import { decode, type Packet } from "../../src/tftp/packet.ts";
import { TftpServer } from "../../src/tftp/server.ts";

export class CollectingSink implements EventSink {
  readonly events: EventInput[] = [];
  append(event: EventInput): void {
    this.events.push(event);
  }
  of(kind: string): EventInput[] {
    return this.events.filter((e) => e.kind === kind);
  }
}

/** A server on an ephemeral loopback port serving `roots`. */
export async function startServer(roots: string[], config: Partial<TftpConfig> = {}) {
  const events = new CollectingSink();
  const cfg = TftpConfigSchema.parse({ host: "127.0.0.1", port: 0, roots, ...config });
  const server = await TftpServer.start({ config: cfg, roots, events, log: silentLogger });
  return { server, events, port: server.address.port };
}

export async function tempDir(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `kindling-${prefix}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export function sha256(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash("sha256");
    createReadStream(file)
      .on("data", (c) => h.update(c))
      .on("end", () => resolve(h.digest("hex")))
      .on("error", reject);
  });
}

/** Runs a real client; rejects with its output when it fails, so a missing tool fails the test loudly. */
export function run(cmd: string, args: string[], timeoutMs = 120_000): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(" ")} failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

/** A hand-driven TFTP peer for what real clients cannot be told to do (wrong TIDs, duplicate ACKs, garbage). */
export class RawPeer {
  private readonly queue: { packet: Packet; from: RemoteInfo }[] = [];
  private waiter: (() => void) | undefined;
  private constructor(readonly socket: Socket) {
    socket.on("message", (msg, from) => {
      this.queue.push({ packet: decode(msg), from });
      this.waiter?.();
    });
  }
  /** `address`: any of 127.0.0.0/8 is local, so peers can stand for different hosts. */
  static async open(address = "127.0.0.1"): Promise<RawPeer> {
    const socket = createSocket("udp4");
    await new Promise<void>((r) => socket.bind(0, address, r));
    return new RawPeer(socket);
  }
  send(buf: Buffer, port: number): void {
    this.socket.send(buf, port, "127.0.0.1");
  }
  /** Next packet, or undefined if none arrives within `waitMs` (a bound for failure, not a speed check). */
  async next(waitMs = 5000): Promise<{ packet: Packet; from: RemoteInfo } | undefined> {
    const deadline = Date.now() + waitMs;
    while (this.queue.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.waiter = undefined;
    }
    return this.queue.shift();
  }
  close(): void {
    this.socket.close();
  }
}

/** Waits until the server has no transfer running (its last ACK may still be in flight when a client exits). */
export async function idle(server: TftpServer, waitMs = 10_000): Promise<void> {
  const deadline = Date.now() + waitMs;
  while (server.stats().active > 0) {
    if (Date.now() > deadline) throw new Error(`still ${server.stats().active} transfers running`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
