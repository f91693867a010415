/**
 * A hostile host's TFTP traffic, for the adversarial tests and bench/hostile-tftp.ts: many sockets on
 * loopback source addresses (all of 127.0.0.0/8 is local, so one process can stand for many hosts), each
 * sending read requests and then never answering. Sockets stay open, so the server hears no ICMP error
 * and only its own limits free the slots.
 */
import { createSocket, type Socket } from "node:dgram";
import { encodeRequest, Opcode } from "../../src/tftp/packet.ts";

/** `count` source addresses 127.<a>.<b>.<c> from 127.0.1.1 on, avoiding .0 and .255. */
export function hostAddresses(count: number, first = 256 + 1): string[] {
  const out: string[] = [];
  for (let n = first; out.length < count; n++) {
    if (n % 256 === 0 || n % 256 === 255) continue;
    out.push(`127.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`);
  }
  return out;
}

export function readRequest(file: string, options: Record<string, string> = {}): Buffer {
  return encodeRequest({ op: Opcode.RRQ, filename: file, mode: "octet", options: new Map(Object.entries(options)) });
}

export class Flood {
  /** Packets the server sent back to the attacker (OACK, DATA, ERROR). */
  received = 0;
  /** Sockets that have had an answer. */
  private readonly answered = new Set<Socket>();
  private constructor(private readonly sockets: Socket[]) {
    for (const s of sockets)
      s.on("message", () => {
        this.received++;
        this.answered.add(s);
      });
  }

  /** Binds `perHost` sockets on each of `hosts`. */
  static async open(hosts: string[], perHost: number): Promise<Flood> {
    const sockets: Socket[] = [];
    await Promise.all(
      hosts.flatMap((host) =>
        Array.from({ length: perHost }, () => {
          const s = createSocket("udp4");
          sockets.push(s);
          return new Promise<void>((resolve, reject) => {
            s.once("error", reject);
            s.bind(0, host, () => {
              s.off("error", reject);
              // The attacker does not care what happens to its packets.
              s.on("error", () => {});
              resolve();
            });
          });
        }),
      ),
    );
    return new Flood(sockets);
  }

  get size(): number {
    return this.sockets.length;
  }

  /**
   * One datagram from every socket, `batch` at a time with a pause of `pauseMs` between (about 10,000 a
   * second by default), so that the server sees most of them rather than the kernel dropping them. Then,
   * like any client, each socket still without an answer repeats it, up to `repeats` more rounds.
   */
  async sendAll(packet: Buffer, port: number, { repeats = 0, batch = 20, pauseMs = 2 } = {}): Promise<void> {
    let from = this.sockets;
    for (let round = 0; round <= repeats && from.length > 0; round++) {
      for (let i = 0; i < from.length; i += batch) {
        for (const s of from.slice(i, i + batch)) s.send(packet, port, "127.0.0.1");
        await new Promise((r) => setTimeout(r, pauseMs));
      }
      await new Promise((r) => setTimeout(r, 200));
      from = from.filter((s) => !this.answered.has(s));
    }
  }

  close(): void {
    for (const s of this.sockets) s.close();
  }
}
