/**
 * TFTP as PXE firmware does it: a `tsize` probe that is aborted once the OACK has told the size, then the
 * real read with a negotiated block size, lock-step (one ACK per DATA; PXE ROMs and EDK2's default send no
 * windowsize), retransmitting on the firmware's timeouts. Each transfer uses its own socket bound to the
 * machine's leased address, so the server sees it come from that machine.
 */
import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { decode, encodeAck, encodeError, encodeRequest, Opcode, type Packet } from "../../src/tftp/packet.ts";

/** Per-packet waits before retransmitting the last request or ACK; the transfer fails after the last. */
const TIMEOUTS = [1000, 2000, 4000, 8000];

export class TftpError extends Error {
  constructor(
    message: string,
    readonly retries: number,
  ) {
    super(message);
  }
}

interface Incoming {
  packet: Packet;
  from: RemoteInfo;
}

/** A socket with a queue of decoded packets and a bounded wait for the next one. */
class Endpoint {
  private readonly queue: Incoming[] = [];
  private wake: (() => void) | undefined;
  private constructor(readonly socket: Socket) {
    socket.on("message", (msg, from) => {
      try {
        this.queue.push({ packet: decode(msg), from });
      } catch {
        return; // not TFTP: ignored, as firmware does
      }
      this.wake?.();
    });
  }

  static async open(localIp: string): Promise<Endpoint> {
    const socket = createSocket("udp4");
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind(0, localIp, () => {
        socket.off("error", reject);
        resolve();
      });
    });
    return new Endpoint(socket);
  }

  async next(waitMs: number, signal: AbortSignal): Promise<Incoming | undefined> {
    const deadline = Date.now() + waitMs;
    while (this.queue.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0 || signal.aborted) return undefined;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = undefined;
    }
    return this.queue.shift();
  }

  /** Sends and waits until the datagram has left: a socket closed right after send() drops it. */
  sendNow(buf: Buffer, port: number, address: string): Promise<void> {
    return new Promise((resolve) => this.socket.send(buf, port, address, () => resolve()));
  }

  close(): void {
    this.socket.close();
  }
}

const request = (file: string, options: Record<string, string>) =>
  encodeRequest({ op: Opcode.RRQ, filename: file, mode: "octet", options: new Map(Object.entries(options)) });

/** Reads `file` from `server`:69 as a PXE ROM does. Returns the bytes received and the retransmissions. */
export async function tftpGet(opts: {
  server: string;
  file: string;
  localIp: string;
  blksize: number;
  signal: AbortSignal;
}): Promise<{ bytes: number; retries: number }> {
  let retries = 0;
  // The probe: ask for the size, read it from the OACK, abort (ERROR 0), as PXE ROMs do before loading.
  const probe = await Endpoint.open(opts.localIp);
  let tsize: number | undefined;
  try {
    for (let i = 0; ; i++) {
      if (i >= TIMEOUTS.length) throw new TftpError(`no answer to the tsize probe of ${opts.file}`, retries);
      if (i > 0) retries++;
      probe.socket.send(request(opts.file, { tsize: "0", blksize: String(opts.blksize) }), 69, opts.server);
      const got = await probe.next(TIMEOUTS[i]!, opts.signal);
      if (!got) continue;
      if (got.packet.op === Opcode.ERROR)
        throw new TftpError(`${opts.file}: error ${got.packet.code} ${got.packet.message}`, retries);
      if (got.packet.op === Opcode.OACK) tsize = Number(got.packet.options.get("tsize"));
      await probe.sendNow(encodeError(0, "tsize probe done"), got.from.port, got.from.address);
      break;
    }
  } finally {
    probe.close();
  }

  const ep = await Endpoint.open(opts.localIp);
  try {
    let lastSent = request(opts.file, { blksize: String(opts.blksize), tsize: "0" });
    let dest = { port: 69, address: opts.server };
    let tid: RemoteInfo | undefined;
    let blksize = 512;
    let expected = 1;
    let bytes = 0;
    let attempt = 0;
    ep.socket.send(lastSent, dest.port, dest.address);
    for (;;) {
      const got = await ep.next(TIMEOUTS[attempt]!, opts.signal);
      if (!got) {
        if (opts.signal.aborted) throw new TftpError("stopped at the deadline", retries);
        if (++attempt >= TIMEOUTS.length) throw new TftpError(`${opts.file}: timed out at block ${expected}`, retries);
        retries++;
        ep.socket.send(lastSent, dest.port, dest.address);
        continue;
      }
      const { packet, from } = got;
      if (tid && (from.port !== tid.port || from.address !== tid.address)) {
        ep.socket.send(encodeError(5, "unknown transfer ID"), from.port, from.address);
        continue;
      }
      if (packet.op === Opcode.ERROR)
        throw new TftpError(`${opts.file}: error ${packet.code} ${packet.message}`, retries);
      tid ??= from;
      dest = { port: from.port, address: from.address };
      if (packet.op === Opcode.OACK && expected === 1 && bytes === 0) {
        blksize = Number(packet.options.get("blksize") ?? 512);
        lastSent = encodeAck(0);
        ep.socket.send(lastSent, dest.port, dest.address);
        attempt = 0;
        continue;
      }
      if (packet.op !== Opcode.DATA) continue;
      if (packet.block !== (expected & 0xffff)) {
        // A duplicate of a block already taken: our ACK was lost or late; say it again.
        ep.socket.send(lastSent, dest.port, dest.address);
        continue;
      }
      bytes += packet.payload.length;
      lastSent = encodeAck(expected);
      attempt = 0;
      expected++;
      if (packet.payload.length < blksize) {
        await ep.sendNow(lastSent, dest.port, dest.address);
        break;
      }
      ep.socket.send(lastSent, dest.port, dest.address);
    }
    if (tsize !== undefined && bytes !== tsize)
      throw new TftpError(`${opts.file}: got ${bytes} bytes, tsize said ${tsize}`, retries);
    return { bytes, retries };
  } finally {
    ep.close();
  }
}
