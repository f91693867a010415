/**
 * What every reply of both modes is built from: the serving links and which address Kindling has on each,
 * the reply skeleton (message type, server identifier, relay information), the boot information for a link,
 * and the event a reply is recorded as.
 */
import { type BootAnswer, type Client, planBoot } from "../boot/dhcp-plan.ts";
import type { Loader } from "../boot/plan.ts";
import type { Logger } from "../log.ts";
import type { EventSink } from "../model/event.ts";
import type { DhcpConfig } from "./config.ts";
import { type DhcpRequest, ZERO } from "./exchange.ts";
import { inCidr } from "./ip.ts";
import type { Link } from "./links.ts";
import { IpxeSub, ipToBuf, Opt, PxeSub } from "./options.ts";
import { type DhcpPacket, replyTo } from "./packet.ts";

export interface ReplyDeps {
  config: DhcpConfig;
  advertise: string;
  httpPort: number;
  tftpEnabled: boolean;
  events: EventSink;
  log: Logger;
}

/** How a reply carries boot information: proxy offers and ACKs, a proxy offer without the file, or full mode. */
export type BootForm = "proxy-file" | "proxy-discover" | "full";

const MESSAGE_TYPE_BYTES: Buffer[] = [];

export class Replies {
  /** Serving links: replies are sent, and subnets chosen, per link. The server adds each as it comes up. */
  readonly links: Link[] = [];
  private warnedNoTftp = false;
  private readonly encodedServerIds = new Map<string, Buffer>();

  constructor(private readonly d: ReplyDeps) {}

  serverIp(link: Link | undefined): string {
    return link?.address ?? this.d.advertise;
  }

  isOurs(ip: string): boolean {
    return ip === this.d.advertise || this.links.some((l) => l.address === ip);
  }

  linkFor(ip: string | undefined): Link | undefined {
    if (!ip || ip === ZERO) return undefined;
    return this.links.find((l) => l.address === ip) ?? this.links.find((l) => inCidr(l.cidr, ip));
  }

  /** The boot answer for `client` on `link`, its URLs on that link's address. */
  plan(client: Client, fromNetwork: boolean, link: Link | undefined, loader: Loader | undefined): BootAnswer {
    const answer = planBoot({
      client,
      fromNetwork,
      bootFiles: this.d.config.bootFiles,
      loaders: this.d.config.loaders,
      loader,
      httpBase: `http://${this.serverIp(link)}:${this.d.httpPort}`,
    });
    if (answer.kind === "boot" && !answer.file.startsWith("http://") && !this.d.tftpEnabled) {
      if (!this.warnedNoTftp) this.d.log.warn("dhcp: PXE clients need TFTP, which is disabled; they get no boot file");
      this.warnedNoTftp = true;
      return { kind: "none" };
    }
    return answer;
  }

  base(req: DhcpPacket, type: number, link: Link | undefined): DhcpPacket {
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

  /** Boot information for a reply on `link`; the answer's URLs are re-based on that link's address. */
  withBoot(reply: DhcpPacket, r: DhcpRequest, link: Link | undefined, form: BootForm): void {
    const answer =
      r.answer.kind === "boot" && link !== r.inc.link
        ? this.plan(r.client, true, link, r.loader) // it boots from the network: only the URLs move
        : r.answer;
    if (answer.kind !== "boot") return;
    reply.siaddr = this.serverIp(link);
    const echo = r.req.options.raw.get(Opt.ClientGuid);
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
      const item = r.req.options.get(Opt.VendorSpecific)?.get(PxeSub.BootItem);
      if (item) sub.set(PxeSub.BootItem, item);
      reply.options.set(Opt.VendorSpecific, sub);
    }
    if (form === "full" && answer.ipxe) reply.options.set(Opt.Ipxe, new Map([[IpxeSub.NoPxeDhcp, Buffer.from([1])]]));
  }

  /** Records a reply (or a refusal); plain clients only for what an operator must see about the pool. */
  event(r: DhcpRequest, kind: string, detail: Record<string, unknown>): void {
    if (r.client.kind === "plain" && kind !== "dhcp.nak" && kind !== "dhcp.pool-exhausted" && kind !== "dhcp.decline")
      return;
    const a = r.answer;
    this.d.events.append({
      mac: r.mac,
      kind,
      detail: { mode: this.d.config.mode, ...(a.kind === "boot" ? { file: a.file } : { boot: a.kind }), ...detail },
    });
  }
}
