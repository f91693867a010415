/**
 * One request in, zero or more replies out: the DHCP logic of both modes, without sockets. The server
 * feeds it decoded packets tagged with the link they are known to come from (if any) and sends what it
 * returns through the socket of the reply's link. Intake is shared; the answer is the proxy responder's or
 * the full-mode responder's, which owns the pools.
 */
import type { Machines } from "../boot/machines.ts";
import type { DhcpBoot } from "../boot/service.ts";
import type { Logger } from "../log.ts";
import type { EventSink } from "../model/event.ts";
import type { Machine } from "../model/machine.ts";
import type { DhcpConfig } from "./config.ts";
import { DropError, type Incoming, type Outgoing } from "./exchange.ts";
import { type FullDeps, FullResponder } from "./full.ts";
import { intake } from "./intake.ts";
import type { Link } from "./links.ts";
import type { SubnetPool } from "./pool.ts";
import { ProxyResponder } from "./proxy.ts";
import { Replies } from "./replies.ts";

export interface HandlerDeps {
  config: DhcpConfig;
  advertise: string;
  httpPort: number;
  tftpEnabled: boolean;
  /** Full mode's leases (repository, reservations, outage handling); without them nothing is leased. */
  leases: Omit<FullDeps, "config" | "advertise" | "log" | "now"> | undefined;
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

export class DhcpHandler {
  private readonly replies: Replies;
  private readonly proxy: ProxyResponder;
  private readonly full: FullResponder | undefined;

  constructor(private readonly d: HandlerDeps) {
    this.replies = new Replies(d);
    this.proxy = new ProxyResponder(d.config, this.replies);
    this.full =
      d.config.mode === "full" && d.leases
        ? new FullResponder({ ...d, ...d.leases, now: d.now ?? Date.now }, this.replies)
        : undefined;
  }

  /** Serving links, in the order they came up. */
  get links(): readonly Link[] {
    return this.replies.links;
  }

  /** Full mode's responder (owner of the pools); undefined in proxy mode. */
  get responder(): FullResponder | undefined {
    return this.full;
  }

  /** Full mode's subnet pools; none in proxy mode. */
  get pools(): readonly SubnetPool[] {
    return this.full?.pools ?? [];
  }

  addLink(link: Link): void {
    this.replies.links.push(link);
    this.full?.addLink(link);
  }

  /** Replies now, or once the lease database has answered (REQUEST, RELEASE, DECLINE in full mode). */
  handle(inc: Incoming): Outgoing[] | Promise<Outgoing[]> {
    const r = intake(this.d, this.replies, inc);
    if (this.d.config.mode === "proxy" || inc.port === "proxy") return this.proxy.respond(r);
    if (!this.full) throw new DropError(`mode ${this.d.config.mode} leases no addresses`);
    return this.full.respond(r);
  }
}
