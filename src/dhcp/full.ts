/**
 * Full mode: Kindling is the network's DHCP server. It owns the subnet pools and their leases, and answers
 * every client (RFC 2131), adding boot information for network-boot clients.
 */
import type { Occurrence } from "../limits/coalesce.ts";
import { ReportLimiter } from "../limits/report-limit.ts";
import type { Logger } from "../log.ts";
import type { LeaseRepository } from "../store/lease-repository.ts";
import type { Lease } from "../store/leases.ts";
import { DatabaseBusyError, DatabaseUnavailableError } from "../store/pg/database.ts";
import type { DhcpConfig } from "./config.ts";
import { BROADCAST, type DhcpRequest, DropError, MAX_TEXT, type Outgoing, RefusedError, ZERO } from "./exchange.ts";
import { intToIp } from "./ip.ts";
import type { Link } from "./links.ts";
import { MessageType, messageTypeName, Opt } from "./options.ts";
import { BROADCAST_FLAG, DhcpOptions, type DhcpPacket } from "./packet.ts";
import { type BindResult, SubnetPool } from "./pool.ts";
import type { Replies } from "./replies.ts";

/** A full pool, or declined addresses, are logged and recorded at most this often per subnet. */
const REPORT_MS = 10_000;

export interface FullDeps {
  config: DhcpConfig;
  /** Kindling's address, naming the subnet served when no serving link is known. */
  advertise: string;
  /** Decides every bind, release and decline (lease-repository.ts). */
  leases: LeaseRepository;
  /** Static reservations (`machines.ip`), ip → mac; read on every DISCOVER and REQUEST, so cached. */
  reservations: () => Map<string, string>;
  /** Whether the lease database answers (false while PostgreSQL is unreachable; always true on SQLite). */
  databaseUp: () => boolean;
  /**
   * Renewals acknowledged from memory while the database was unreachable, written to it once it is back;
   * resolves once the renewal is on disk (lease-sync.ts), before the ACK leaves.
   */
  replay: (subnet: string, lease: Lease) => Promise<void>;
  /** Refusals for want of a database, as one log line and event per window (limits/coalesce.ts). */
  refusals: { record(o: Occurrence): void };
  /** Where each pool's next-fit cursor starts (a different place per node sharing a database). */
  startAt?: number;
  log: Logger;
  now: () => number;
}

/** The database cannot answer now; anything else a repository throws is a bug or a broken file. */
const unavailable = (err: unknown) => err instanceof DatabaseUnavailableError || err instanceof DatabaseBusyError;

export class FullResponder {
  readonly pools: SubnetPool[];
  private readonly linkPool = new Map<Link, SubnetPool>();
  private readonly exhaustedReports: ReportLimiter<SubnetPool>;
  private readonly declineReports: ReportLimiter<SubnetPool>;
  private readonly encodedSubnets = new Map<SubnetPool, { config: [number, Buffer][]; lease: [number, Buffer][] }>();

  constructor(
    private readonly d: FullDeps,
    private readonly replies: Replies,
  ) {
    this.exhaustedReports = new ReportLimiter(REPORT_MS, d.now);
    this.declineReports = new ReportLimiter(REPORT_MS, d.now);
    this.pools = d.config.subnets.map((s) => new SubnetPool(s, d.leases, d.now, d.startAt));
  }

  /** Fills the pools' views from the repository's rows (at start); oldest first, so quarantines keep their order. */
  restore(leases: Lease[]): void {
    for (const l of [...leases].sort((a, b) => a.updatedAt - b.updatedAt))
      this.pools.find((p) => p.contains(l.ip))?.restore(l);
  }

  /** Rows other nodes wrote (PostgreSQL's change feed), each applied to the pool of its subnet. */
  apply(leases: (Lease & { subnet: string })[]): void {
    for (const l of leases) this.pools.find((p) => p.config.cidr === l.subnet && p.contains(l.ip))?.apply(l);
  }

  /** A serving link came up: requests broadcast on it are served from the subnet holding its address. */
  addLink(link: Link): void {
    const pool = this.pools.find((p) => p.contains(link.address));
    if (pool) this.linkPool.set(link, pool);
  }

  /** DISCOVER and INFORM are answered from memory at once; the rest wait for the lease database. */
  respond(r: DhcpRequest): Outgoing[] | Promise<Outgoing[]> {
    switch (r.type) {
      case MessageType.DISCOVER:
        return this.discover(r);
      case MessageType.REQUEST:
        return this.request(r);
      case MessageType.RELEASE:
        return this.release(r);
      case MessageType.DECLINE:
        return this.decline(r);
      case MessageType.INFORM:
        return this.inform(r);
      default:
        throw new DropError(`message type ${messageTypeName(r.type) ?? r.type} is not a client message`);
    }
  }

  /** Where a reply goes (RFC 2131 4.1). Unicast to yiaddr would need an ARP entry node cannot add: broadcast. */
  private dest(req: DhcpPacket, type: number): { address: string; destPort: number } {
    if (req.giaddr !== ZERO) return { address: req.giaddr, destPort: this.d.config.port };
    if (type !== MessageType.NAK && req.ciaddr !== ZERO)
      return { address: req.ciaddr, destPort: this.d.config.clientPort };
    return { address: BROADCAST, destPort: this.d.config.clientPort };
  }

  /** Candidate (pool, link) pairs for a request whose subnet is not named by an address it carries. */
  private candidates(r: DhcpRequest): { pool: SubnetPool; link: Link | undefined }[] {
    const { req, inc, mac } = r;
    if (req.giaddr !== ZERO) {
      const pool = this.pools.find((p) => p.contains(req.giaddr));
      return pool ? [{ pool, link: inc.link }] : [];
    }
    if (inc.link) {
      const pool = this.linkPool.get(inc.link);
      return pool ? [{ pool, link: inc.link }] : [];
    }
    const direct = [...this.linkPool].map(([link, pool]) => ({ pool, link: link as Link | undefined }));
    if (this.replies.links.length === 0) {
      const pool = this.pools.find((p) => p.contains(this.d.advertise)) ?? this.pools[0];
      return pool ? [{ pool, link: undefined }] : [];
    }
    if (direct.length <= 1) return direct;
    // Several links and a broadcast: a client we know is answered only on its own link; a new one gets
    // an offer on each, and its REQUEST (server identifier = that link's address) tells us which it took.
    // Only a bound lease says where the client is: a new client holds an offer on every link.
    const known = direct.find((c) => c.pool.current(mac)?.state === "bound");
    if (known) return [known];
    const reservations = this.d.reservations();
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

  private discover(r: DhcpRequest): Outgoing[] {
    const { req, mac } = r;
    const cands = this.candidates(r);
    if (cands.length === 0) throw new DropError(`no subnet serves this DISCOVER (giaddr ${req.giaddr})`);
    const reservations = this.d.reservations();
    const requested = req.options.get(Opt.RequestedIp);
    const out: Outgoing[] = [];
    const up = this.d.databaseUp();
    let refused: RefusedError | undefined;
    for (const { pool, link } of cands) {
      // Without the database only a client's own lease can be confirmed: no offer that its REQUEST could not bind.
      if (!up && pool.current(mac)?.state !== "bound") {
        refused = this.refused(r, "offer");
        continue;
      }
      const ip = pool.choose(mac, { requested, reservations });
      if (!ip) {
        this.reportExhausted(r, pool);
        continue;
      }
      pool.offer(mac, ip, this.d.config.offerSeconds * 1000);
      const reply = this.replies.base(req, MessageType.OFFER, link);
      reply.yiaddr = ip;
      this.leaseOptions(reply, pool, true);
      this.replies.withBoot(reply, r, link, "full");
      this.replies.event(r, "dhcp.offer", { ip, link: link?.name ?? null });
      out.push({ packet: reply, link, port: "dhcp", ...this.dest(req, MessageType.OFFER) });
    }
    if (out.length === 0 && refused) throw refused;
    return out;
  }

  /**
   * A full pool is logged and recorded once per REPORT_MS per subnet, with the number of DISCOVERs left
   * unanswered since the last report: a rack of machines retrying against a full pool would otherwise write a
   * warning and an event row for every packet.
   */
  private reportExhausted(r: DhcpRequest, pool: SubnetPool): void {
    const unanswered = this.exhaustedReports.hit(pool);
    if (unanswered === undefined) return;
    const detail = { subnet: pool.config.cidr, unanswered };
    this.d.log.warn({ ...detail, mac: r.mac }, "dhcp: pool exhausted");
    this.replies.event(r, "dhcp.pool-exhausted", detail);
  }

  private nak(r: DhcpRequest, link: Link | undefined, reason: string): Outgoing {
    const reply = this.replies.base(r.req, MessageType.NAK, link);
    reply.options.set(Opt.Message, reason);
    if (r.req.giaddr !== ZERO) reply.flags |= BROADCAST_FLAG;
    this.replies.event(r, "dhcp.nak", { reason });
    return { packet: reply, link, port: "dhcp", ...this.dest(r.req, MessageType.NAK) };
  }

  private async ack(r: DhcpRequest, pool: SubnetPool, link: Link | undefined, ip: string): Promise<Outgoing> {
    const { req, mac } = r;
    const hostname = req.options.get(Opt.Hostname)?.slice(0, MAX_TEXT) ?? null;
    const leaseMs = pool.config.leaseSeconds * 1000;
    let bound: BindResult;
    try {
      bound = await pool.bind(mac, ip, leaseMs, hostname, this.d.reservations());
    } catch (err) {
      if (!unavailable(err)) throw err;
      // A renewal of a lease this node knows is answered from memory and written once the database is back
      // (the address stays the client's there meanwhile); anything new waits for the database.
      const known = err instanceof DatabaseUnavailableError ? pool.known(mac, ip) : undefined;
      if (!known) throw this.refused(r, "bind", err);
      const lease = pool.renewInMemory(known, leaseMs, hostname);
      await this.d.replay(pool.config.cidr, lease);
      bound = { ok: true, lease };
    }
    if (!bound.ok) return this.nak(r, link, bound.reason);
    const reply = this.replies.base(req, MessageType.ACK, link);
    reply.ciaddr = req.ciaddr;
    reply.yiaddr = ip;
    this.leaseOptions(reply, pool, true);
    this.replies.withBoot(reply, r, link, "full");
    this.replies.event(r, "dhcp.ack", { ip, link: link?.name ?? null });
    return { packet: reply, link, port: "dhcp", ...this.dest(req, MessageType.ACK) };
  }

  /**
   * A request refused because the database cannot answer: one log line and event per window for all of
   * them (the count comes with the next), and the error the server counts as refused.
   */
  private refused(r: DhcpRequest, what: "offer" | "bind" | "release" | "decline", err?: unknown): RefusedError {
    const reason = err instanceof DatabaseBusyError ? "database-busy" : "database-unavailable";
    this.d.refusals.record({
      kind: "dhcp.refused",
      client: undefined,
      reason,
      detail: { reason },
      message: `dhcp: lease database ${reason === "database-busy" ? "busy" : "unreachable"}: new leases, releases and declines refused, known leases renewed from memory`,
      level: "warn",
    });
    return new RefusedError(`${what} for ${r.mac} refused: ${reason}`);
  }

  private async request(r: DhcpRequest): Promise<Outgoing[]> {
    const { req, mac, inc } = r;
    const serverId = req.options.get(Opt.ServerId);
    const requested = req.options.get(Opt.RequestedIp);
    if (serverId !== undefined) {
      // SELECTING: the client picked an offer; if not ours, free what we held for it.
      if (!this.replies.isOurs(serverId)) {
        for (const p of this.pools) p.cancelOffer(mac);
        return [];
      }
      const ip = requested ?? (req.ciaddr !== ZERO ? req.ciaddr : undefined);
      if (!ip) throw new DropError("REQUEST names a server but no address");
      const link = inc.link ?? this.replies.links.find((l) => l.address === serverId);
      const pool =
        req.giaddr !== ZERO
          ? this.pools.find((p) => p.contains(req.giaddr))
          : link
            ? this.linkPool.get(link)
            : this.pools.find((p) => p.contains(ip));
      for (const p of this.pools) if (p !== pool) p.cancelOffer(mac);
      if (!pool) throw new DropError(`no subnet for REQUEST of ${ip}`);
      return [await this.ack(r, pool, link, ip)];
    }
    if (requested !== undefined) {
      // INIT-REBOOT: the address must belong to the network the client is on. With several links and a
      // broadcast, the link is unknown: the address itself names the subnet, and a NAK goes out on each.
      const cands = this.candidates(r);
      if (cands.length === 0) throw new DropError(`no subnet serves this REQUEST (giaddr ${req.giaddr})`);
      const hit = cands.find((c) => c.pool.contains(requested));
      if (!hit) return cands.map((c) => this.nak(r, c.link, `${requested} is not on this network`));
      return [await this.ack(r, hit.pool, hit.link, requested)];
    }
    if (req.ciaddr !== ZERO) {
      // RENEWING (unicast) or REBINDING (broadcast): the lease is named by ciaddr.
      const hit =
        req.giaddr !== ZERO
          ? this.candidates(r).find((c) => c.pool.contains(req.ciaddr))
          : this.byAddress(req.ciaddr, inc.link);
      if (!hit) return [this.nak(r, inc.link ?? this.replies.linkFor(req.ciaddr), `${req.ciaddr} is not ours`)];
      return [await this.ack(r, hit.pool, hit.link, req.ciaddr)];
    }
    throw new DropError("REQUEST with neither server identifier, requested address nor ciaddr");
  }

  private byAddress(ip: string, link?: Link): { pool: SubnetPool; link: Link | undefined } | undefined {
    const pool = this.pools.find((p) => p.contains(ip));
    if (!pool) return undefined;
    return { pool, link: link ?? [...this.linkPool].find(([, p]) => p === pool)?.[0] };
  }

  private async release(r: DhcpRequest): Promise<Outgoing[]> {
    const { req, mac } = r;
    const pool = this.pools.find((p) => p.contains(req.ciaddr));
    if (!pool) return [];
    try {
      if (await pool.release(mac, req.ciaddr)) this.replies.event(r, "dhcp.release", { ip: req.ciaddr });
    } catch (err) {
      throw unavailable(err) ? this.refused(r, "release", err) : err;
    }
    return [];
  }

  /**
   * RFC 2131 4.3.3: a DECLINE names the address (50) and the server (54); it counts only from the client that
   * address is offered or leased to, so a host cannot quarantine addresses it was never given. Anything else
   * is dropped (counted, reason at debug level).
   */
  private async decline(r: DhcpRequest): Promise<Outgoing[]> {
    const { req, mac } = r;
    const ip = req.options.get(Opt.RequestedIp);
    const serverId = req.options.get(Opt.ServerId);
    if (!ip || serverId === undefined) throw new DropError("DECLINE without requested address (50) or server (54)");
    if (!this.replies.isOurs(serverId)) return [];
    const pool = this.pools.find((p) => p.contains(ip));
    if (!pool) throw new DropError(`DECLINE of ${ip}, which no subnet holds`);
    const max = Math.max(1, Math.floor((pool.size * this.d.config.declineMaxPercent) / 100));
    let declined: Awaited<ReturnType<SubnetPool["decline"]>>;
    try {
      declined = await pool.decline(mac, ip, this.d.config.declineSeconds * 1000, max);
    } catch (err) {
      throw unavailable(err) ? this.refused(r, "decline", err) : err;
    }
    if (!declined.ok) throw new DropError(`DECLINE refused: ${declined.reason}`);
    // Reported once per REPORT_MS per subnet (with how many declines it stands for): a host can lease
    // addresses only to decline them.
    const declines = this.declineReports.hit(pool);
    if (declines === undefined) return [];
    const detail = {
      ip,
      declines,
      quarantined: pool.quarantined(),
      ...(declined.released ? { quarantineEnded: declined.released } : {}),
    };
    this.d.log.warn({ ...detail, mac }, "dhcp: address declined, quarantined");
    this.replies.event(r, "dhcp.decline", detail);
    return [];
  }

  private inform(r: DhcpRequest): Outgoing[] {
    const { req, inc } = r;
    if (req.ciaddr === ZERO) throw new DropError("INFORM without ciaddr");
    const hit = req.giaddr !== ZERO ? this.candidates(r)[0] : this.byAddress(req.ciaddr, inc.link);
    if (!hit) throw new DropError(`INFORM from ${req.ciaddr}, which no subnet holds`);
    const reply = this.replies.base(req, MessageType.ACK, hit.link);
    reply.ciaddr = req.ciaddr;
    this.leaseOptions(reply, hit.pool, false);
    this.replies.withBoot(reply, r, hit.link, "full");
    this.replies.event(r, "dhcp.ack", { inform: true, ip: req.ciaddr });
    return [{ packet: reply, link: hit.link, port: "dhcp", ...this.dest(req, MessageType.ACK) }];
  }
}
