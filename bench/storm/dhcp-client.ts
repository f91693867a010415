/**
 * DHCP as the simulated machines speak it. One socket on 0.0.0.0:68 serves the whole fleet: every request
 * carries the broadcast flag, so servers answer by broadcast and this one socket hears every answer; answers
 * are told apart by transaction id and chaddr. Requests carry what firmware and iPXE send (93, 94, 97, 60
 * `PXEClient:Arch:…`, and for iPXE 77 `iPXE` and 175), and the retransmission schedules they use.
 */
import { createSocket, type Socket } from "node:dgram";
import { MessageType, Opt } from "../../src/dhcp/options.ts";
import { BROADCAST_FLAG, DhcpOptions, type DhcpPacket, decodePacket, encodePacket } from "../../src/dhcp/packet.ts";
import type { Firmware } from "./plan.ts";

export type Client = "firmware" | "ipxe";

export interface Lease {
  ip: string;
  /** Next server (siaddr), where TFTP goes. */
  nextServer: string;
  file: string;
  /** Retransmissions without an answer, and DORA restarts after a NAK. */
  retries: number;
}

export class DhcpError extends Error {
  constructor(
    message: string,
    readonly retries: number,
  ) {
    super(message);
  }
}

/**
 * Retransmission timeouts: PXE 2.1 firmware waits 4, 8, 16, 32 s; iPXE starts at 1 s and doubles up to its
 * 10 s ceiling, giving up after the 8 s wait.
 */
const SCHEDULE: Record<Client, number[]> = { firmware: [4000, 8000, 16000, 32000], ipxe: [1000, 2000, 4000, 8000] };
/**
 * iPXE keeps listening for ProxyDHCP offers this long after DISCOVER unless the offer says `no-pxedhcp`
 * (175.176) or itself carries PXE vendor options (iPXE's DHCP_DISC_PROXY_TIMEOUT_SEC); it moves on at the next
 * retransmission timer expiry past it.
 */
const IPXE_PROXY_WAIT_MS = 2000;
/** A NAK restarts DORA; after this many restarts the machine gives up. */
const MAX_RESTARTS = 2;

const ARCH: Record<Firmware, number> = { bios: 0, uefi: 7 };
/** What the ROMs put in 60 and 94: Intel's BIOS PXE 2.1 and an EDK2 UEFI network stack. */
const VENDOR: Record<Firmware, string> = {
  bios: "PXEClient:Arch:00000:UNDI:002001",
  uefi: "PXEClient:Arch:00007:UNDI:003016",
};
const NDI: Record<Firmware, { type: number; major: number; minor: number }> = {
  bios: { type: 1, major: 2, minor: 1 },
  uefi: { type: 1, major: 3, minor: 16 },
};
const FIRMWARE_PRL = [1, 2, 3, 4, 5, 6, 11, 12, 13, 15, 16, 17, 18, 22, 23, 28, 40, 41, 42, 43, 50, 51, 54, 58, 59, 60];
const IPXE_PRL = [1, 3, 6, 7, 12, 15, 17, 26, 43, 60, 66, 67, 119, 128, 129, 130, 131, 132, 133, 134, 135, 175, 203];
/** iPXE's feature list in 175: HTTP (19), PXE extensions (16), DNS (23), bzImage (24), EFI (36). */
const IPXE_FEATURES = Buffer.from([19, 1, 1, 16, 1, 2, 23, 1, 1, 24, 1, 1]);

export interface Identity {
  mac: string;
  uuid: string;
  firmware: Firmware;
}

interface Pending {
  chaddr: Buffer;
  queue: DhcpPacket[];
  wake: (() => void) | undefined;
}

/** The fleet's DHCP socket: sends requests, hands each answer to the exchange waiting for its xid. */
export class DhcpPort {
  private readonly pending = new Map<number, Pending>();
  /** Datagrams on :68 that were not DHCP or matched no exchange (another machine's late answer, say). */
  stray = 0;

  private constructor(private readonly socket: Socket) {
    socket.on("message", (msg) => {
      const d = decodePacket(msg);
      const p = d.ok ? this.pending.get(d.packet.xid) : undefined;
      if (!d.ok || !p || d.packet.op !== 2 || !d.packet.chaddr.subarray(0, 6).equals(p.chaddr.subarray(0, 6))) {
        this.stray++;
        return;
      }
      p.queue.push(d.packet);
      p.wake?.();
    });
  }

  static async open(): Promise<DhcpPort> {
    const socket = createSocket({ type: "udp4", reuseAddr: true, recvBufferSize: 4 << 20 });
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind(68, "0.0.0.0", () => {
        socket.off("error", reject);
        resolve();
      });
    });
    socket.setBroadcast(true);
    return new DhcpPort(socket);
  }

  close(): void {
    this.socket.close();
  }

  /** DISCOVER → OFFER → REQUEST → ACK for one machine, as `client` does it. Only answers from `server` count. */
  async dora(who: Identity, client: Client, server: string, signal: AbortSignal): Promise<Lease> {
    const chaddr = Buffer.alloc(16);
    Buffer.from(who.mac.replace(/:/g, ""), "hex").copy(chaddr);
    let retries = 0;
    for (let restart = 0; ; restart++) {
      const xid = (Math.random() * 2 ** 32) >>> 0;
      const pending: Pending = { chaddr, queue: [], wake: undefined };
      this.pending.set(xid, pending);
      try {
        const started = Date.now();
        const offer = await this.phase(pending, signal, client, () => this.send(who, client, xid, chaddr), {
          accept: (p) => type(p) === MessageType.OFFER && p.options.get(Opt.ServerId) === server,
          // iPXE requests at once only when no proxy offer can come; otherwise once the wait is over, which it
          // notices on the next answer or retransmission timer expiry.
          ready: (p) => client === "firmware" || noProxyWait(p) || Date.now() - started > IPXE_PROXY_WAIT_MS,
        });
        retries += offer.retries;
        if (!offer.packet) throw new DhcpError("no OFFER", retries);
        const o = offer.packet;
        pending.queue.length = 0;
        const ack = await this.phase(
          pending,
          signal,
          client,
          () => this.send(who, client, xid, chaddr, { ip: o.yiaddr, serverId: server }),
          { accept: (p) => type(p) === MessageType.ACK || type(p) === MessageType.NAK, ready: () => true },
        );
        retries += ack.retries;
        if (!ack.packet) throw new DhcpError("no ACK", retries);
        if (type(ack.packet) === MessageType.NAK) {
          retries++;
          if (restart < MAX_RESTARTS) continue;
          throw new DhcpError(`NAK: ${ack.packet.options.get(Opt.Message) ?? ""}`, retries);
        }
        const a = ack.packet;
        return {
          ip: a.yiaddr,
          nextServer: a.siaddr !== "0.0.0.0" ? a.siaddr : (a.options.get(Opt.TftpServer) ?? server),
          file: a.file || a.options.get(Opt.BootFile) || "",
          retries,
        };
      } finally {
        this.pending.delete(xid);
      }
    }
  }

  /**
   * Sends, then waits for an accepted answer along the retransmission schedule. `ready` says whether the first
   * accepted answer may be acted on yet (iPXE's proxy wait); it is asked on each answer and at each timer expiry.
   */
  private async phase(
    pending: Pending,
    signal: AbortSignal,
    client: Client,
    send: () => void,
    rule: { accept: (p: DhcpPacket) => boolean; ready: (p: DhcpPacket) => boolean },
  ): Promise<{ packet: DhcpPacket | undefined; retries: number }> {
    const schedule = SCHEDULE[client];
    let held: DhcpPacket | undefined;
    let retries = 0;
    for (let i = 0; i < schedule.length; i++) {
      if (i > 0 && !held) retries++;
      send();
      const deadline = Date.now() + schedule[i]!;
      for (;;) {
        if (signal.aborted) return { packet: undefined, retries };
        const p = pending.queue.shift();
        if (p) {
          if (!rule.accept(p)) continue;
          held ??= p;
          if (rule.ready(held)) return { packet: held, retries };
          continue;
        }
        const left = deadline - Date.now();
        if (left <= 0) break;
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, left);
          pending.wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        pending.wake = undefined;
      }
      if (held && rule.ready(held)) return { packet: held, retries };
    }
    return { packet: held, retries };
  }

  private send(
    who: Identity,
    client: Client,
    xid: number,
    chaddr: Buffer,
    request?: { ip: string; serverId: string },
  ): void {
    const o = new DhcpOptions();
    o.set(Opt.MessageType, request ? MessageType.REQUEST : MessageType.DISCOVER);
    o.set(Opt.MaxMessageSize, client === "ipxe" ? 1472 : 1260);
    if (request) {
      o.set(Opt.RequestedIp, request.ip);
      o.set(Opt.ServerId, request.serverId);
    }
    o.set(Opt.ParameterList, client === "ipxe" ? IPXE_PRL : FIRMWARE_PRL);
    o.set(Opt.VendorClass, VENDOR[who.firmware]);
    o.set(Opt.ClientArch, [ARCH[who.firmware]]);
    o.set(Opt.ClientNdi, NDI[who.firmware]);
    o.set(Opt.ClientGuid, who.uuid);
    if (client === "ipxe") {
      o.set(Opt.ClientId, Buffer.concat([Buffer.from([1]), chaddr.subarray(0, 6)]));
      o.setRaw(Opt.UserClass, Buffer.from("iPXE"));
      o.setRaw(Opt.Ipxe, IPXE_FEATURES);
    }
    const packet: DhcpPacket = {
      op: 1,
      htype: 1,
      hlen: 6,
      hops: 0,
      xid,
      secs: 0,
      flags: BROADCAST_FLAG,
      ciaddr: "0.0.0.0",
      yiaddr: "0.0.0.0",
      siaddr: "0.0.0.0",
      giaddr: "0.0.0.0",
      chaddr,
      sname: "",
      file: "",
      options: o,
    };
    this.socket.send(encodePacket(packet), 67, "255.255.255.255");
  }
}

const type = (p: DhcpPacket) => p.options.get(Opt.MessageType);

/** iPXE skips the proxy wait when the offer says no-pxedhcp, or is itself a PXE offer (60 PXEClient). */
function noProxyWait(p: DhcpPacket): boolean {
  const ipxe = p.options.get(Opt.Ipxe);
  const flag = ipxe?.get(176);
  return (flag !== undefined && flag[0] !== 0) || (p.options.get(Opt.VendorClass)?.startsWith("PXEClient") ?? false);
}
