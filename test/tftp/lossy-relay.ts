import { createSocket, type Socket } from "node:dgram";
import { prng } from "../helpers/prng.ts";

export interface Faults {
  /** Probabilities per forwarded packet, each way. */
  drop: number;
  duplicate: number;
  /** Held back a few milliseconds so that later packets overtake it. */
  reorder: number;
}

/**
 * The OACK and its ACK 0 pass untouched. atftp 0.8 aborts on a second OACK ("unexpected OACK") instead of
 * acknowledging it again, so a duplicated OACK, or a lost ACK 0 that makes the server repeat its OACK,
 * would fail that client whatever the server does. Requests, DATA and ACKs all take faults.
 */
function isNegotiation(msg: Buffer): boolean {
  if (msg.length < 4) return false;
  const op = msg.readUInt16BE(0);
  return op === 6 || (op === 4 && msg.readUInt16BE(2) === 0);
}

const bound = (type: "udp4" = "udp4") => {
  const s = createSocket(type);
  s.bind(0, "127.0.0.1");
  return s;
};

/**
 * A UDP relay between TFTP clients and a server on loopback that drops, duplicates and reorders packets
 * both ways. It mirrors the server's per-transfer ports: for each server TID it opens its own port
 * towards the client, so the client sees a TFTP server that changes ports exactly like a real one.
 */
export class LossyRelay {
  readonly counts = { forwarded: 0, dropped: 0, duplicated: 0, reordered: 0 };
  private readonly sockets: Socket[] = [];
  private readonly held = new Set<NodeJS.Timeout>();
  private readonly rand: () => number;

  private constructor(
    private readonly front: Socket,
    private readonly serverPort: number,
    private readonly faults: Faults,
    seed: number,
  ) {
    this.rand = prng(seed);
    this.sockets.push(front);
    /** Per client: the socket that talks to the server for it, and its mirrors of server TIDs. */
    const clients = new Map<string, Socket>();
    front.on("message", (msg, client) => {
      const key = `${client.address}:${client.port}`;
      let upstream = clients.get(key);
      if (!upstream) {
        upstream = this.upstreamFor(client.address, client.port);
        clients.set(key, upstream);
      }
      this.deliver(upstream, msg, this.serverPort);
    });
  }

  static async start(serverPort: number, faults: Faults, seed = 1): Promise<LossyRelay> {
    const front = bound();
    await new Promise((r) => front.once("listening", r));
    return new LossyRelay(front, serverPort, faults, seed);
  }

  get port(): number {
    return this.front.address().port;
  }

  private upstreamFor(clientAddress: string, clientPort: number): Socket {
    const upstream = bound();
    this.sockets.push(upstream);
    const mirrors = new Map<number, Socket>();
    upstream.on("message", (msg, server) => {
      let mirror = mirrors.get(server.port);
      if (!mirror) {
        const m = bound();
        this.sockets.push(m);
        m.on("message", (back) => this.deliver(upstream, back, server.port));
        mirrors.set(server.port, m);
        mirror = m;
      }
      this.deliver(mirror, msg, clientPort, clientAddress);
    });
    return upstream;
  }

  private deliver(via: Socket, msg: Buffer, port: number, address = "127.0.0.1"): void {
    const send = () => via.send(msg, port, address);
    this.counts.forwarded++;
    if (isNegotiation(msg)) {
      send();
      return;
    }
    const r = this.rand();
    const { drop, duplicate, reorder } = this.faults;
    if (r < drop) {
      this.counts.dropped++;
    } else if (r < drop + duplicate) {
      this.counts.duplicated++;
      send();
      send();
    } else if (r < drop + duplicate + reorder) {
      this.counts.reordered++;
      const t = setTimeout(
        () => {
          this.held.delete(t);
          send();
        },
        2 + Math.floor(this.rand() * 8),
      );
      this.held.add(t);
    } else send();
  }

  close(): void {
    for (const t of this.held) clearTimeout(t);
    for (const s of this.sockets) s.close();
  }
}
