/**
 * Socket adapter. One wildcard socket per port receives broadcasts; one socket per serving link, bound to
 * the link's address on the same port (SO_REUSEADDR), receives what is unicast to that address and sends
 * every reply meant for that link, so limited broadcasts leave through that interface only.
 */
import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import type { Machines } from "../boot/machines.ts";
import type { DhcpBoot } from "../boot/service.ts";
import { CoalescedLog, type Occurrence } from "../limits/coalesce.ts";
import type { Logger } from "../log.ts";
import type { EventSink } from "../model/event.ts";
import type { Machine } from "../model/machine.ts";
import { literalLookup } from "../net/literal-lookup.ts";
import type { Db } from "../store/db.ts";
import type { LeaseRepository } from "../store/lease-repository.ts";
import { LeaseStore } from "../store/leases.ts";
import { SqliteLeaseRepository } from "../store/sqlite-lease-repository.ts";
import type { DhcpConfig } from "./config.ts";
import { DropError, type Outgoing, type Port, RefusedError } from "./exchange.ts";
import { DhcpHandler } from "./handler.ts";
import { LeaseSync } from "./lease-sync.ts";
import { type Link, resolveLinks } from "./links.ts";
import { MessageType, messageTypeName, Opt, OptionError } from "./options.ts";
import { DEFAULT_MAX_MESSAGE, decodePacket, encodePacket } from "./packet.ts";

export interface DhcpServerOptions {
  config: DhcpConfig;
  /** Kindling's IPv4 as machines see it. */
  advertise: string;
  httpPort: number;
  tftpEnabled: boolean;
  /** The node's SQLite file: reservations (`machines.ip`), and the leases unless `leaseDatabase` says otherwise. */
  db: Db;
  /**
   * Full mode's lease database when it is not the SQLite file (PostgreSQL shared by several nodes): the
   * repository, whether it answers now, and where renewals acknowledged without it wait to be written.
   */
  leaseDatabase?: { repository: LeaseRepository; available: () => boolean; replayFile: string };
  /** Refusals for want of a database go through this (one line per window); default: one of the server's own. */
  coalesced?: { record(o: Occurrence): void };
  /** Where the pools' next-fit cursors start (nodes sharing a database start apart). */
  startAt?: number;
  machines: Pick<Machines, "sighting">;
  events: EventSink;
  log: Logger;
  /** Whether a known machine boots from the network now, and its loader (BootService.dhcpBoot). */
  bootFor?: (machine: Machine) => DhcpBoot;
}

const RECV_BUFFER = 4 * 1024 * 1024;
const BROADCAST = "255.255.255.255";
/** How often configured interfaces that are not up yet are looked for (getifaddrs: cheap). */
const LINK_POLL_MS = 1000;
/**
 * Requests waiting for the lease database at most; past it new ones are refused (counted, the client retries).
 * Bounds the memory a flood of REQUESTs holds while the database is slow; well above what the group commits
 * of either engine keep in flight (64 per batch, a batch per connection on PostgreSQL).
 */
export const MAX_PENDING = 1024;
/** At most one log line per this many ms for replies the kernel refused to send. */
const UNSENT_LOG_MS = 10_000;

export interface DhcpStats {
  received: number;
  replied: number;
  /** Well-formed requests that could not be served (no subnet, nonsense, internal error). */
  dropped: number;
  /** Requests left unanswered on purpose (non-PXE clients in proxy mode, RELEASE, another server chosen). */
  ignored: number;
  malformed: number;
  /** Replies the kernel would not send (no route to a relay's giaddr, say). */
  unsent: number;
  /**
   * Requests not served because the lease database could not answer (unreachable, busy, or MAX_PENDING
   * waiting): new leases, releases and declines; known leases are still renewed.
   */
  refused: number;
  /** Renewals acknowledged while the database was unreachable and not yet written to it. */
  replayWaiting?: number;
  /** Received and sent messages by type name (DISCOVER, OFFER, ...). */
  byType: Record<string, number>;
  /** Per subnet: addresses in use (bound, offered, quarantined), free, and quarantined by DECLINE. */
  leases?: { subnet: string; used: number; free: number; quarantined: number }[];
}

function bind(sock: Socket, port: number, address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    sock.once("error", onError);
    sock.bind({ port, address }, () => {
      sock.off("error", onError);
      resolve();
    });
  });
}

export class DhcpServer {
  private readonly sockets: { socket: Socket; port: Port; link: Link | undefined; unicast: boolean }[] = [];
  private readonly counters = {
    received: 0,
    replied: 0,
    dropped: 0,
    ignored: 0,
    malformed: 0,
    unsent: 0,
    refused: 0,
  };
  /** When a send failure was last logged: a request can name any giaddr, so failures are logged sparingly. */
  private unsentLoggedAt = -Infinity;
  private readonly byType: Record<string, number> = {};
  /** Requests waiting for the lease database; their replies leave once it has committed. */
  private pending = 0;
  private drained: (() => void) | undefined;
  /** Ports to serve: 67 (or as configured), plus 4011 in proxy mode; none in mode off. */
  private readonly ports: [Port, number][];
  private wildcardOpen = false;
  private linkWatch: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(
    private readonly opts: DhcpServerOptions,
    private readonly handler: DhcpHandler,
    private readonly sync: LeaseSync | undefined,
    /** Closed with the server: what it opened itself. */
    private readonly owned: { close(): unknown }[],
  ) {
    const { config } = opts;
    this.ports = config.mode === "off" || !config.port ? [] : [["dhcp", config.port]];
    if (config.mode === "proxy" && config.proxyPort) this.ports.push(["proxy", config.proxyPort]);
  }

  static async start(opts: DhcpServerOptions): Promise<DhcpServer> {
    const { config, log } = opts;
    const { links, waiting } = resolveLinks(config.interfaces, opts.advertise);
    if (config.mode === "full" && config.subnets.length === 0)
      log.warn("dhcp: full mode without subnets leases nothing");
    if (config.mode !== "off" && config.interfaces.length === 0 && links.length === 0)
      log.warn(
        { advertise: opts.advertise },
        `dhcp: no interface holds the advertised address ${opts.advertise}: DHCP listens on 0.0.0.0 only and its ` +
          "broadcast replies leave by the routing table; set --advertise to the boot network's address, or name the " +
          "serving interfaces in dhcp.interfaces (fine as it is only if the address is NATed to this host)",
      );
    const owned: { close(): unknown }[] = [];
    let handler: DhcpHandler;
    let sync: LeaseSync | undefined;
    if (config.mode === "full") {
      const db = opts.leaseDatabase;
      const repository = db?.repository ?? new SqliteLeaseRepository(opts.db);
      if (!db) owned.push(repository);
      const coalesced = opts.coalesced ?? new CoalescedLog({ events: opts.events, log });
      if (!opts.coalesced) owned.push(coalesced as CoalescedLog);
      const reserved = new LeaseStore(opts.db);
      handler = new DhcpHandler({
        ...opts,
        leases: {
          leases: repository,
          reservations: () => reserved.reservations(),
          databaseUp: db?.available ?? (() => true),
          replay: (subnet, lease) => sync!.record(subnet, lease),
          refusals: coalesced,
          startAt: opts.startAt,
        },
      });
      sync = new LeaseSync({
        repository,
        responder: handler.responder!,
        available: db?.available ?? (() => true),
        replayFile: db?.replayFile,
        log,
      });
      try {
        await sync.start();
      } catch (err) {
        for (const o of owned) await o.close();
        throw err;
      }
    } else handler = new DhcpHandler({ ...opts, leases: undefined });
    const server = new DhcpServer(opts, handler, sync, owned);
    try {
      // With interfaces configured and none up yet, nothing listens: a broadcast that reached the wildcard
      // socket now could only be answered out of some other interface, on a network Kindling must not serve.
      if (config.interfaces.length === 0) await server.openWildcard();
      for (const link of links) await server.serveLink(link);
    } catch (err) {
      await server.close();
      throw err;
    }
    log.info(
      {
        mode: config.mode,
        port: config.port,
        proxyPort: config.proxyPort,
        links: links.map((l) => `${l.name}=${l.address}`),
      },
      "dhcp: listening",
    );
    if (waiting.length) server.watchLinks(waiting);
    return server;
  }

  private async openWildcard(): Promise<void> {
    if (this.wildcardOpen) return;
    this.wildcardOpen = true;
    for (const [port, number] of this.ports) await this.open(port, number, "0.0.0.0", undefined, false);
  }

  /**
   * Two sockets per port on the link's address. Unicast replies (to ciaddr, giaddr, a 4011 client) leave by
   * the second: a reply to an address nobody answers ARP for waits in the kernel for seconds and holds the
   * socket's send buffer, so a host naming absent addresses could otherwise stall every broadcast OFFER on
   * the link. Both receive what is unicast to the address (the kernel hands each datagram to one of them).
   */
  private async serveLink(link: Link): Promise<void> {
    await this.openWildcard();
    for (const [port, number] of this.ports) {
      await this.open(port, number, link.address, link, false);
      await this.open(port, number, link.address, link, true);
    }
    this.handler.addLink(link);
  }

  /**
   * Configured interfaces that are down, without carrier or without an address at start (a cable plugged in
   * later, a bridge whose first port comes up later, an address from networkd) are served once they are up,
   * without a restart.
   */
  private watchLinks(names: string[]): void {
    const { config, advertise, log } = this.opts;
    log.warn(
      { interfaces: names },
      "dhcp: interface down, without carrier or without an IPv4 address; serving it as soon as it is up",
    );
    let busy = false;
    this.linkWatch = setInterval(() => {
      if (busy) return;
      let up: Link[];
      try {
        up = resolveLinks(names, advertise).links;
      } catch {
        return; // an interface removed meanwhile: keep waiting for it to come back
      }
      if (up.length === 0) return;
      busy = true;
      void (async () => {
        for (const link of up) {
          if (this.closed) return;
          names.splice(names.indexOf(link.name), 1);
          try {
            await this.serveLink(link);
            log.info(
              { interface: link.name, address: link.address, mode: config.mode },
              "dhcp: interface up, serving it",
            );
          } catch (err) {
            log.error({ err, interface: link.name }, "dhcp: interface up but cannot be served");
          }
        }
        if (names.length === 0) clearInterval(this.linkWatch);
        busy = false;
      })();
    }, LINK_POLL_MS);
    this.linkWatch.unref();
  }

  private async open(
    port: Port,
    number: number,
    address: string,
    link: Link | undefined,
    unicast: boolean,
  ): Promise<void> {
    // A deep receive buffer absorbs bursts (hundreds of machines powered on at once) while the event loop is
    // busy; the kernel caps it at net.core.rmem_max.
    const socket = createSocket({ type: "udp4", reuseAddr: true, recvBufferSize: RECV_BUFFER, lookup: literalLookup });
    try {
      await bind(socket, number, address);
    } catch (err) {
      socket.close();
      const hint =
        (err as NodeJS.ErrnoException).code === "EACCES"
          ? ` (ports below 1024 need root or CAP_NET_BIND_SERVICE; set dhcp.port/dhcp.proxyPort, or dhcp.mode: off)`
          : "";
      throw new Error(`dhcp: cannot bind ${address}:${number}: ${(err as Error).message}${hint}`, { cause: err });
    }
    socket.setBroadcast(true);
    socket.on("message", (msg, rinfo) => this.onMessage(msg, rinfo, port, link));
    socket.on("error", (err) => this.opts.log.error({ err, port, address }, "dhcp: socket error"));
    this.sockets.push({ socket, port, link, unicast });
  }

  private count(name: string): void {
    this.byType[name] = (this.byType[name] ?? 0) + 1;
  }

  private onMessage(msg: Buffer, rinfo: RemoteInfo, port: Port, link: Link | undefined): void {
    this.counters.received++;
    const log = this.opts.log;
    const decoded = decodePacket(msg);
    if (!decoded.ok) {
      this.counters.malformed++;
      log.debug({ from: rinfo.address, reason: decoded.reason }, "dhcp: malformed packet dropped");
      return;
    }
    const packet = decoded.packet;
    let result: Outgoing[] | Promise<Outgoing[]>;
    let maxSize = DEFAULT_MAX_MESSAGE;
    try {
      const type = packet.options.get(Opt.MessageType);
      this.count(messageTypeName(type ?? 0) ?? `type-${type}`);
      maxSize = packet.options.get(Opt.MaxMessageSize) ?? DEFAULT_MAX_MESSAGE;
      if (this.pending >= MAX_PENDING && type !== MessageType.DISCOVER && type !== MessageType.INFORM)
        throw new RefusedError(`${this.pending} requests already wait for the lease database`);
      // A request that arrived on the wildcard socket came by broadcast; with one link it is that link's.
      const known = link ?? (this.handler.links.length === 1 ? this.handler.links[0] : undefined);
      result = this.handler.handle({ packet, port, link: known, from: { address: rinfo.address, port: rinfo.port } });
    } catch (err) {
      this.failed(err, rinfo.address);
      return;
    }
    // OFFER, NAK, INFORM and proxy replies need nothing committed first: they go now, one by one as requests
    // arrive. The rest leave when the repository has committed their lease (both engines group the commits
    // of a burst, so a burst of REQUESTs costs one commit and its ACKs leave together).
    if (Array.isArray(result)) return this.deliver(result, maxSize);
    this.pending++;
    result.then(
      (replies) => {
        this.settled();
        this.deliver(replies, maxSize);
      },
      (err) => {
        this.settled();
        this.failed(err, rinfo.address);
      },
    );
  }

  private settled(): void {
    if (--this.pending === 0) this.drained?.();
  }

  private deliver(replies: Outgoing[], maxSize: number): void {
    if (replies.length === 0) this.counters.ignored++;
    // Unpaced: a token bucket here capped ACKs at 24,000/s and, near that cap, spent a fifth of the
    // server's CPU spinning the event loop (docs/dhcp.md).
    for (const reply of replies) this.send(reply, maxSize);
  }

  private failed(err: unknown, from: string): void {
    const log = this.opts.log;
    if (err instanceof OptionError) {
      this.counters.malformed++;
      log.debug({ from, reason: err.message }, "dhcp: malformed option, packet dropped");
    } else if (err instanceof RefusedError) {
      this.counters.refused++;
      log.debug({ from, reason: err.message }, "dhcp: request refused");
    } else if (err instanceof DropError) {
      this.counters.dropped++;
      log.debug({ from, reason: err.message }, "dhcp: request dropped");
    } else {
      // Nothing is ACKed that is not committed (a failed lease commit lands here); clients retry.
      this.counters.dropped++;
      log.error({ err, from }, "dhcp: request failed");
    }
  }

  private send(r: Outgoing, maxSize: number): void {
    const unicast = r.address !== BROADCAST;
    const entry =
      this.sockets.find((s) => s.port === r.port && s.link === r.link && s.unicast === unicast) ??
      this.sockets.find((s) => s.port === r.port && !s.link);
    if (!entry) return;
    let bytes: Buffer;
    try {
      bytes = encodePacket(r.packet, maxSize);
    } catch (err) {
      this.counters.dropped++;
      this.opts.log.error({ err }, "dhcp: reply does not encode");
      return;
    }
    this.counters.replied++;
    this.count(messageTypeName(r.packet.options.get(Opt.MessageType) ?? 0) ?? "unknown");
    entry.socket.send(bytes, r.destPort, r.address, (err) => err && this.unsent(err, r.address));
  }

  private unsent(err: Error, address: string): void {
    this.counters.unsent++;
    const now = Date.now();
    if (now - this.unsentLoggedAt < UNSENT_LOG_MS) return;
    this.unsentLoggedAt = now;
    this.opts.log.warn({ err, address, unsent: this.counters.unsent }, "dhcp: reply could not be sent");
  }

  /** The address `mac` holds a bound, unexpired lease on, as the pools know it. */
  boundIp(mac: string): string | undefined {
    for (const p of this.handler.pools) {
      const l = p.current(mac);
      if (l?.state === "bound") return l.ip;
    }
    return undefined;
  }

  stats(): DhcpStats {
    const leases = this.handler.pools.map((p) => p.stats());
    return {
      ...this.counters,
      byType: { ...this.byType },
      ...(this.opts.config.mode === "full" ? { leases } : {}),
      ...(this.sync && this.opts.leaseDatabase ? { replayWaiting: this.sync.waiting } : {}),
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.linkWatch);
    await Promise.all(this.sockets.map(({ socket }) => new Promise<void>((resolve) => socket.close(() => resolve()))));
    this.sockets.length = 0;
    // Requests already with the database finish (each is bounded by the statement timeout) before it closes.
    if (this.pending > 0) await new Promise<void>((resolve) => (this.drained = resolve));
    await this.sync?.stop();
    for (const o of this.owned) await o.close();
  }
}
