/**
 * One request in, zero or more replies out: the DHCP logic of both modes, without sockets. The server
 * feeds it decoded packets tagged with the link they are known to come from (if any) and sends what it
 * returns through the socket of the reply's link.
 */
import {
  type BootAnswer,
  type Client,
  classifyClient,
  machineArch,
  planBoot,
  proxyOfferCarriesFile,
} from "../boot/dhcp-plan.ts";
import { bootsFromNetwork } from "../boot/lifecycle.ts";
import type { Machines } from "../boot/machines.ts";
import type { Loader } from "../boot/plan.ts";
import type { DhcpBoot } from "../boot/service.ts";
import { ReportLimiter } from "../limits/report-limit.ts";
import type { Logger } from "../log.ts";
import type { EventSink } from "../model/event.ts";
import { macFromBytes, normalizeUuid } from "../model/identity.ts";
import type { Machine } from "../model/machine.ts";
import type { LeaseStore } from "../store/leases.ts";
import type { DhcpConfig } from "./config.ts";
import { inCidr, intToIp } from "./ip.ts";
import type { Link } from "./links.ts";
import { IpxeSub, ipToBuf, MessageType, messageTypeName, Opt, OptionError, PxeSub } from "./options.ts";
import { BROADCAST_FLAG, DhcpOptions, type DhcpPacket, replyTo } from "./packet.ts";
import { SubnetPool } from "./pool.ts";

export type Port = "dhcp" | "proxy";

export interface Incoming {
  packet: DhcpPacket;
  port: Port;
  /** Link the request is known to have arrived on (unicast to a link address, or the only link). */
  link: Link | undefined;
  from: { address: string; port: number };
}

export interface Outgoing {
  packet: DhcpPacket;
  /** Send through this link's socket; undefined → the wildcard socket of `port`. */
  link: Link | undefined;
  port: Port;
  address: string;
  destPort: number;
}

export interface HandlerDeps {
  config: DhcpConfig;
  advertise: string;
  httpPort: number;
  tftpEnabled: boolean;
  leases: LeaseStore | undefined;
  /** The machine owner (boot/machines.ts): records each boot exchange's machine. */
  machines: Pick<Machines, "sighting">;
  events: EventSink;
  log: Logger;
  /**
   * Whether a known machine boots from the network now and with which loader, by its state and resolved
   * profile (BootService.dhcpBoot). Without it only the state counts, as for an unresolvable profile.
   */
  bootFor?: ((machine: Machine) => DhcpBoot) | undefined;
  now?: () => number;
}

const ZERO = "0.0.0.0";
const MESSAGE_TYPE_BYTES: Buffer[] = [];
/** A full pool, or declined addresses, are logged and recorded at most this often per subnet. */
const REPORT_MS = 10_000;
const BROADCAST = "255.255.255.255";
/** Longest client-chosen text kept in a lease or an event, and longest option 82 echoed: one option's worth. */
const MAX_TEXT = 255;

/** Thrown for requests that decode but make no sense (counted as dropped, with the reason logged). */
export class DropError extends Error {
  override name = "DropError";
}

interface Ctx {
  req: DhcpPacket;
  inc: Incoming;
  type: number;
  mac: string;
  client: Client;
  loader: Loader | undefined;
  answer: BootAnswer;
}

export class DhcpHandler {
  readonly pools: SubnetPool[];
  /** Serving links: replies are sent, and subnets chosen, per link. The server adds each as it comes up. */
  readonly links: Link[] = [];
  private readonly now: () => number;
  private readonly linkPool = new Map<Link, SubnetPool>();
  private warnedNoTftp = false;
  private readonly encodedServerIds = new Map<string, Buffer>();
  private readonly exhaustedReports: ReportLimiter<SubnetPool>;
  private readonly declineReports: ReportLimiter<SubnetPool>;
  private readonly encodedSubnets = new Map<SubnetPool, { config: [number, Buffer][]; lease: [number, Buffer][] }>();

  constructor(private readonly d: HandlerDeps) {
    this.now = d.now ?? Date.now;
    this.exhaustedReports = new ReportLimiter(REPORT_MS, this.now);
    this.declineReports = new ReportLimiter(REPORT_MS, this.now);
    this.pools =
      d.config.mode === "full" && d.leases ? d.config.subnets.map((s) => new SubnetPool(s, d.leases!, this.now)) : [];
    // Oldest first, so quarantines come back in the order they began.
    const leases = d.leases && this.pools.length ? d.leases.all().sort((a, b) => a.updatedAt - b.updatedAt) : [];
    for (const l of leases) this.pools.find((p) => p.contains(l.ip))?.restore(l);
  }

  addLink(link: Link): void {
    this.links.push(link);
    const pool = this.pools.find((p) => p.contains(link.address));
    if (pool) this.linkPool.set(link, pool);
  }

  handle(inc: Incoming): Outgoing[] {
    const req = inc.packet;
    if (req.op !== 1) throw new DropError("not a BOOTREQUEST");
    const type = req.options.get(Opt.MessageType);
    if (type === undefined) throw new DropError("no message type (BOOTP is not served)");
    if (req.hlen !== 6 || req.htype !== 1)
      throw new DropError(`hardware type ${req.htype}/${req.hlen} is not Ethernet`);
    // Echoed into every reply: longer than one option (RFC 3046) it could make the reply too big to send.
    const relay = req.options.raw.get(Opt.RelayAgent);
    if (relay && relay.length > MAX_TEXT)
      throw new OptionError(`option 82: ${relay.length} bytes, more than ${MAX_TEXT}`);
    const mac = macFromBytes(req.chaddr);
    const client = classifyClient(
      {
        vendorClass: req.options.get(Opt.VendorClass),
        archs: req.options.get(Opt.ClientArch),
        userClasses: req.options.get(Opt.UserClass)?.classes,
        hasIpxeOptions: req.options.has(Opt.Ipxe),
      },
      this.d.config.ipxeUserClasses,
    );
    let machine: Machine | undefined;
    if (
      client.kind !== "plain" &&
      (type === MessageType.DISCOVER || type === MessageType.REQUEST || type === MessageType.INFORM)
    ) {
      // Every boot exchange feeds the machine record before iPXE ever runs.
      // An all-zero GUID means the firmware has no SMBIOS UUID.
      const uuid = normalizeUuid(req.options.get(Opt.ClientGuid));
      machine = this.d.machines.sighting(
        { mac, uuid: uuid && /[1-9a-f]/.test(uuid) ? uuid : undefined, arch: machineArch(client) },
        { by: "dhcp" },
      );
    }
    const boot = machine
      ? (this.d.bootFor?.(machine) ?? { fromNetwork: bootsFromNetwork(machine.state, undefined), loader: undefined })
      : { fromNetwork: true, loader: undefined };
    // The profile's loader matters only to firmware choosing its first file.
    const loader = client.kind === "pxe" ? boot.loader : undefined;
    const fromNetwork = boot.fromNetwork;
    const ctx: Ctx = { req, inc, type, mac, client, loader, answer: this.plan(client, fromNetwork, inc.link, loader) };
    if (ctx.answer.kind === "unknown-arch" && type === MessageType.DISCOVER)
      this.d.events.append({
        mac,
        kind: "dhcp.unknown-arch",
        detail: {
          arch: ctx.answer.arch ?? null,
          vendorClass: req.options.get(Opt.VendorClass)?.slice(0, MAX_TEXT) ?? null,
        },
      });
    if (ctx.answer.kind === "no-loader" && type === MessageType.DISCOVER)
      this.d.events.append({ mac, kind: "dhcp.no-loader", detail: { reason: ctx.answer.reason } });
    if (this.d.config.mode === "proxy" || inc.port === "proxy") return this.proxy(ctx);
    return this.full(ctx);
  }

  private httpBase(serverIp: string): string {
    return `http://${serverIp}:${this.d.httpPort}`;
  }

  private serverIp(link: Link | undefined): string {
    return link?.address ?? this.d.advertise;
  }

  private plan(client: Client, fromNetwork: boolean, link: Link | undefined, loader: Loader | undefined): BootAnswer {
    const answer = planBoot({
      client,
      fromNetwork,
      bootFiles: this.d.config.bootFiles,
      loaders: this.d.config.loaders,
      loader,
      httpBase: this.httpBase(this.serverIp(link)),
    });
    if (answer.kind === "boot" && !answer.file.startsWith("http://") && !this.d.tftpEnabled) {
      if (!this.warnedNoTftp) this.d.log.warn("dhcp: PXE clients need TFTP, which is disabled; they get no boot file");
      this.warnedNoTftp = true;
      return { kind: "none" };
    }
    return answer;
  }

  /** Boot information for a reply on `link`; the answer's URLs are re-based on that link's address. */
  private withBoot(
    reply: DhcpPacket,
    ctx: Ctx,
    link: Link | undefined,
    form: "proxy-file" | "proxy-discover" | "full",
  ): void {
    const answer =
      ctx.answer.kind === "boot" && link !== ctx.inc.link
        ? this.plan(ctx.client, true, link, ctx.loader) // it boots from the network: only the URLs move
        : ctx.answer;
    if (answer.kind !== "boot") return;
    reply.siaddr = this.serverIp(link);
    const echo = ctx.req.options.raw.get(Opt.ClientGuid);
    if (form !== "full") {
      // Proxy replies identify themselves as PXE (or HTTP boot) and echo the client's GUID.
      reply.options.set(Opt.VendorClass, answer.vendorClass);
      if (echo) reply.options.setRaw(Opt.ClientGuid, echo);
    } else if (answer.vendorClass === "HTTPClient") {
      // UEFI HTTP boot accepts only offers that say HTTPClient; PXEClient would mark a full offer as proxy.
      reply.options.set(Opt.VendorClass, "HTTPClient");
    }
    if (form === "proxy-discover") return;
    reply.file = answer.file;
    if (form === "proxy-file" && answer.vendorClass === "PXEClient") {
      const sub = new Map<number, Buffer>([[PxeSub.DiscoveryControl, Buffer.from([8])]]);
      const item = ctx.req.options.get(Opt.VendorSpecific)?.get(PxeSub.BootItem);
      if (item) sub.set(PxeSub.BootItem, item);
      reply.options.set(Opt.VendorSpecific, sub);
    }
    if (form === "full" && answer.ipxe) reply.options.set(Opt.Ipxe, new Map([[IpxeSub.NoPxeDhcp, Buffer.from([1])]]));
  }

  private event(ctx: Ctx, kind: string, detail: Record<string, unknown>): void {
    if (ctx.client.kind === "plain" && kind !== "dhcp.nak" && kind !== "dhcp.pool-exhausted" && kind !== "dhcp.decline")
      return;
    const a = ctx.answer;
    this.d.events.append({
      mac: ctx.mac,
      kind,
      detail: { mode: this.d.config.mode, ...(a.kind === "boot" ? { file: a.file } : { boot: a.kind }), ...detail },
    });
  }

  // ---- proxy mode -------------------------------------------------------------------------------------

  private proxy(ctx: Ctx): Outgoing[] {
    const { req, inc, type } = ctx;
    // Never answer non-PXE clients (an iPXE without option 60 cannot take a proxy offer either), machines
    // that should boot from disk, or arches we have nothing for.
    if (ctx.answer.kind !== "boot") return [];
    if (ctx.client.kind === "ipxe" && ctx.client.vendorClass === undefined) return [];
    const answer = ctx.answer;
    const links = inc.link ? [inc.link] : this.links.length ? this.links : [undefined];
    if (type === MessageType.DISCOVER && inc.port === "dhcp") {
      const full = proxyOfferCarriesFile(answer, this.d.config.proxyFullOffer);
      return links.map((link) => {
        const reply = this.base(req, MessageType.OFFER, link);
        reply.flags |= BROADCAST_FLAG;
        this.withBoot(reply, ctx, link, full ? "proxy-file" : "proxy-discover");
        this.event(ctx, "dhcp.offer", { port: "dhcp", proxy: true, withFile: full, link: link?.name ?? null });
        return this.out(
          reply,
          link,
          "dhcp",
          req.giaddr !== ZERO ? req.giaddr : BROADCAST,
          req.giaddr !== ZERO ? this.d.config.port : this.d.config.clientPort,
        );
      });
    }
    const boots = type === MessageType.REQUEST || (type === MessageType.INFORM && inc.port === "proxy");
    if (!boots) return [];
    const serverId = req.options.get(Opt.ServerId);
    // On 67 a REQUEST is the real DHCP server's business, except boot-server discovery broadcast by a client
    // that already has its address (ciaddr set, naming us). An address request is never ours to answer.
    if (
      inc.port === "dhcp" &&
      (req.ciaddr === ZERO || req.options.has(Opt.RequestedIp) || serverId === undefined || !this.isOurs(serverId))
    )
      return [];
    const link = inc.link ?? this.linkFor(serverId) ?? this.linkFor(req.ciaddr);
    const reply = this.base(req, MessageType.ACK, link);
    reply.ciaddr = req.ciaddr;
    this.withBoot(reply, ctx, link, "proxy-file");
    this.event(ctx, "dhcp.ack", { port: inc.port, proxy: true, link: link?.name ?? null });
    // A 4011 request comes from a configured client: answer where it asked from.
    if (inc.port === "proxy") return [this.out(reply, link, "proxy", inc.from.address, inc.from.port)];
    return [
      this.out(
        reply,
        link,
        "dhcp",
        ...(req.giaddr !== ZERO
          ? ([req.giaddr, this.d.config.port] as const)
          : ([req.ciaddr, this.d.config.clientPort] as const)),
      ),
    ];
  }

  private isOurs(ip: string): boolean {
    return ip === this.d.advertise || this.links.some((l) => l.address === ip);
  }

  private linkFor(ip: string | undefined): Link | undefined {
    if (!ip || ip === ZERO) return undefined;
    return this.links.find((l) => l.address === ip) ?? this.links.find((l) => inCidr(l.cidr, ip));
  }

  private base(req: DhcpPacket, type: number, link: Link | undefined): DhcpPacket {
    const reply = replyTo(req);
    // Both are the same bytes on every reply: encoded once (encodePacket copies, nothing writes to them).
    reply.options.setRaw(Opt.MessageType, (MESSAGE_TYPE_BYTES[type] ??= Buffer.from([type])));
    const serverIp = this.serverIp(link);
    let serverId = this.encodedServerIds.get(serverIp);
    if (!serverId) this.encodedServerIds.set(serverIp, (serverId = ipToBuf(serverIp)));
    reply.options.setRaw(Opt.ServerId, serverId);
    // Relay agent information goes back unchanged (RFC 3046).
    const relay = req.options.raw.get(Opt.RelayAgent);
    if (relay) reply.options.setRaw(Opt.RelayAgent, relay);
    return reply;
  }

  private out(packet: DhcpPacket, link: Link | undefined, port: Port, address: string, destPort: number): Outgoing {
    return { packet, link, port, address, destPort };
  }

  // ---- full mode --------------------------------------------------------------------------------------

  /** Where a reply goes (RFC 2131 4.1). Unicast to yiaddr would need an ARP entry node cannot add: broadcast. */
  private dest(req: DhcpPacket, type: number): { address: string; destPort: number } {
    if (req.giaddr !== ZERO) return { address: req.giaddr, destPort: this.d.config.port };
    if (type !== MessageType.NAK && req.ciaddr !== ZERO)
      return { address: req.ciaddr, destPort: this.d.config.clientPort };
    return { address: BROADCAST, destPort: this.d.config.clientPort };
  }

  /** Candidate (pool, link) pairs for a request whose subnet is not named by an address it carries. */
  private candidates(ctx: Ctx): { pool: SubnetPool; link: Link | undefined }[] {
    const { req, inc, mac } = ctx;
    if (req.giaddr !== ZERO) {
      const pool = this.pools.find((p) => p.contains(req.giaddr));
      return pool ? [{ pool, link: inc.link }] : [];
    }
    if (inc.link) {
      const pool = this.linkPool.get(inc.link);
      return pool ? [{ pool, link: inc.link }] : [];
    }
    const direct = [...this.linkPool].map(([link, pool]) => ({ pool, link: link as Link | undefined }));
    if (this.links.length === 0) {
      const pool = this.pools.find((p) => p.contains(this.d.advertise)) ?? this.pools[0];
      return pool ? [{ pool, link: undefined }] : [];
    }
    if (direct.length <= 1) return direct;
    // Several links and a broadcast: a client we know is answered only on its own link; a new one gets
    // an offer on each, and its REQUEST (server identifier = that link's address) tells us which it took.
    // Only a bound lease says where the client is: a new client holds an offer on every link.
    const known = direct.find((c) => c.pool.current(mac)?.state === "bound");
    if (known) return [known];
    const reservations = this.d.leases!.reservations();
    const reserved = direct.find((c) => [...reservations].some(([ip, m]) => m === mac && c.pool.contains(ip)));
    return reserved ? [reserved] : direct;
  }

  /** A subnet's options never change, so they are encoded once per pool and shared by every reply. */
  private subnetOptions(pool: SubnetPool): { config: [number, Buffer][]; lease: [number, Buffer][] } {
    let cached = this.encodedSubnets.get(pool);
    if (!cached) {
      const s = pool.config;
      const o = new DhcpOptions();
      o.set(Opt.SubnetMask, intToIp(pool.cidr.mask));
      if (s.router) o.set(Opt.Router, [s.router]);
      if (s.dns.length) o.set(Opt.DnsServers, s.dns);
      if (s.domain) o.set(Opt.DomainName, s.domain);
      o.set(Opt.BroadcastAddress, intToIp(pool.cidr.broadcast));
      const l = new DhcpOptions()
        .set(Opt.LeaseTime, s.leaseSeconds)
        .set(Opt.RenewalTime, Math.floor(s.leaseSeconds / 2))
        .set(Opt.RebindingTime, Math.floor((s.leaseSeconds * 7) / 8));
      cached = { config: [...o.raw], lease: [...l.raw] };
      this.encodedSubnets.set(pool, cached);
    }
    return cached;
  }

  private leaseOptions(reply: DhcpPacket, pool: SubnetPool, withLease: boolean): void {
    const { config, lease } = this.subnetOptions(pool);
    for (const [code, value] of config) reply.options.setRaw(code, value);
    if (withLease) for (const [code, value] of lease) reply.options.setRaw(code, value);
  }

  private full(ctx: Ctx): Outgoing[] {
    switch (ctx.type) {
      case MessageType.DISCOVER:
        return this.discover(ctx);
      case MessageType.REQUEST:
        return this.request(ctx);
      case MessageType.RELEASE:
        return this.release(ctx);
      case MessageType.DECLINE:
        return this.decline(ctx);
      case MessageType.INFORM:
        return this.inform(ctx);
      default:
        throw new DropError(`message type ${messageTypeName(ctx.type) ?? ctx.type} is not a client message`);
    }
  }

  private discover(ctx: Ctx): Outgoing[] {
    const { req, mac } = ctx;
    const cands = this.candidates(ctx);
    if (cands.length === 0) throw new DropError(`no subnet serves this DISCOVER (giaddr ${req.giaddr})`);
    const reservations = this.d.leases!.reservations();
    const requested = req.options.get(Opt.RequestedIp);
    const out: Outgoing[] = [];
    for (const { pool, link } of cands) {
      const ip = pool.choose(mac, { requested, reservations });
      if (!ip) {
        this.reportExhausted(ctx, pool);
        continue;
      }
      pool.offer(mac, ip, this.d.config.offerSeconds * 1000);
      const reply = this.base(req, MessageType.OFFER, link);
      reply.yiaddr = ip;
      this.leaseOptions(reply, pool, true);
      this.withBoot(reply, ctx, link, "full");
      this.event(ctx, "dhcp.offer", { ip, link: link?.name ?? null });
      out.push({ packet: reply, link, port: "dhcp", ...this.dest(req, MessageType.OFFER) });
    }
    return out;
  }

  /**
   * A full pool is logged and recorded once per REPORT_MS per subnet, with the number of DISCOVERs left
   * unanswered since the last report: a rack of machines retrying against a full pool would otherwise write a
   * warning and an event row for every packet.
   */
  private reportExhausted(ctx: Ctx, pool: SubnetPool): void {
    const unanswered = this.exhaustedReports.hit(pool);
    if (unanswered === undefined) return;
    const detail = { subnet: pool.config.cidr, unanswered };
    this.d.log.warn({ ...detail, mac: ctx.mac }, "dhcp: pool exhausted");
    this.event(ctx, "dhcp.pool-exhausted", detail);
  }

  private nak(ctx: Ctx, link: Link | undefined, reason: string): Outgoing {
    const reply = this.base(ctx.req, MessageType.NAK, link);
    reply.options.set(Opt.Message, reason);
    if (ctx.req.giaddr !== ZERO) reply.flags |= BROADCAST_FLAG;
    this.event(ctx, "dhcp.nak", { reason });
    return { packet: reply, link, port: "dhcp", ...this.dest(ctx.req, MessageType.NAK) };
  }

  private ack(ctx: Ctx, pool: SubnetPool, link: Link | undefined, ip: string): Outgoing {
    const { req, mac } = ctx;
    const hostname = req.options.get(Opt.Hostname)?.slice(0, MAX_TEXT) ?? null;
    const bound = pool.bind(mac, ip, pool.config.leaseSeconds * 1000, hostname, this.d.leases!.reservations());
    if (!bound.ok) return this.nak(ctx, link, bound.reason);
    const reply = this.base(req, MessageType.ACK, link);
    reply.ciaddr = req.ciaddr;
    reply.yiaddr = ip;
    this.leaseOptions(reply, pool, true);
    this.withBoot(reply, ctx, link, "full");
    this.event(ctx, "dhcp.ack", { ip, link: link?.name ?? null });
    return { packet: reply, link, port: "dhcp", ...this.dest(req, MessageType.ACK) };
  }

  private request(ctx: Ctx): Outgoing[] {
    const { req, mac, inc } = ctx;
    const serverId = req.options.get(Opt.ServerId);
    const requested = req.options.get(Opt.RequestedIp);
    if (serverId !== undefined) {
      // SELECTING: the client picked an offer; if not ours, free what we held for it.
      if (!this.isOurs(serverId)) {
        for (const p of this.pools) p.cancelOffer(mac);
        return [];
      }
      const ip = requested ?? (req.ciaddr !== ZERO ? req.ciaddr : undefined);
      if (!ip) throw new DropError("REQUEST names a server but no address");
      const link = inc.link ?? this.links.find((l) => l.address === serverId);
      const pool =
        req.giaddr !== ZERO
          ? this.pools.find((p) => p.contains(req.giaddr))
          : link
            ? this.linkPool.get(link)
            : this.pools.find((p) => p.contains(ip));
      for (const p of this.pools) if (p !== pool) p.cancelOffer(mac);
      if (!pool) throw new DropError(`no subnet for REQUEST of ${ip}`);
      return [this.ack(ctx, pool, link, ip)];
    }
    if (requested !== undefined) {
      // INIT-REBOOT: the address must belong to the network the client is on. With several links and a
      // broadcast, the link is unknown: the address itself names the subnet, and a NAK goes out on each.
      const cands = this.candidates(ctx);
      if (cands.length === 0) throw new DropError(`no subnet serves this REQUEST (giaddr ${req.giaddr})`);
      const hit = cands.find((c) => c.pool.contains(requested));
      if (!hit) return cands.map((c) => this.nak(ctx, c.link, `${requested} is not on this network`));
      return [this.ack(ctx, hit.pool, hit.link, requested)];
    }
    if (req.ciaddr !== ZERO) {
      // RENEWING (unicast) or REBINDING (broadcast): the lease is named by ciaddr.
      const hit =
        req.giaddr !== ZERO
          ? this.candidates(ctx).find((c) => c.pool.contains(req.ciaddr))
          : this.byAddress(req.ciaddr, inc.link);
      if (!hit) return [this.nak(ctx, inc.link ?? this.linkFor(req.ciaddr), `${req.ciaddr} is not ours`)];
      return [this.ack(ctx, hit.pool, hit.link, req.ciaddr)];
    }
    throw new DropError("REQUEST with neither server identifier, requested address nor ciaddr");
  }

  private byAddress(ip: string, link?: Link): { pool: SubnetPool; link: Link | undefined } | undefined {
    const pool = this.pools.find((p) => p.contains(ip));
    if (!pool) return undefined;
    return { pool, link: link ?? [...this.linkPool].find(([, p]) => p === pool)?.[0] };
  }

  private release(ctx: Ctx): Outgoing[] {
    const { req, mac } = ctx;
    const pool = this.pools.find((p) => p.contains(req.ciaddr));
    if (pool?.release(mac, req.ciaddr)) this.event(ctx, "dhcp.release", { ip: req.ciaddr });
    return [];
  }

  /**
   * RFC 2131 4.3.3: a DECLINE names the address (50) and the server (54); it counts only from the client that
   * address is offered or leased to, so a host cannot quarantine addresses it was never given. Anything else
   * is dropped (counted, reason at debug level).
   */
  private decline(ctx: Ctx): Outgoing[] {
    const { req, mac } = ctx;
    const ip = req.options.get(Opt.RequestedIp);
    const serverId = req.options.get(Opt.ServerId);
    if (!ip || serverId === undefined) throw new DropError("DECLINE without requested address (50) or server (54)");
    if (!this.isOurs(serverId)) return [];
    const pool = this.pools.find((p) => p.contains(ip));
    if (!pool) throw new DropError(`DECLINE of ${ip}, which no subnet holds`);
    const max = Math.max(1, Math.floor((pool.size * this.d.config.declineMaxPercent) / 100));
    const r = pool.decline(mac, ip, this.d.config.declineSeconds * 1000, max);
    if (!r.ok) throw new DropError(`DECLINE refused: ${r.reason}`);
    // Reported once per REPORT_MS per subnet (with how many declines it stands for): a host can lease
    // addresses only to decline them.
    const declines = this.declineReports.hit(pool);
    if (declines === undefined) return [];
    const detail = {
      ip,
      declines,
      quarantined: pool.quarantined(),
      ...(r.released ? { quarantineEnded: r.released } : {}),
    };
    this.d.log.warn({ ...detail, mac }, "dhcp: address declined, quarantined");
    this.event(ctx, "dhcp.decline", detail);
    return [];
  }

  private inform(ctx: Ctx): Outgoing[] {
    const { req, inc } = ctx;
    if (req.ciaddr === ZERO) throw new DropError("INFORM without ciaddr");
    const hit = req.giaddr !== ZERO ? this.candidates(ctx)[0] : this.byAddress(req.ciaddr, inc.link);
    if (!hit) throw new DropError(`INFORM from ${req.ciaddr}, which no subnet holds`);
    const reply = this.base(req, MessageType.ACK, hit.link);
    reply.ciaddr = req.ciaddr;
    this.leaseOptions(reply, hit.pool, false);
    this.withBoot(reply, ctx, hit.link, "full");
    this.event(ctx, "dhcp.ack", { inform: true, ip: req.ciaddr });
    return [{ packet: reply, link: hit.link, port: "dhcp", ...this.dest(req, MessageType.ACK) }];
  }
}
