/**
 * Proxy mode: another server leases addresses; Kindling answers network-boot clients with boot information
 * only, on port 67 (offers beside the real server's, boot-server discovery) and on 4011 (PXE's own request).
 */
import { proxyOfferCarriesFile } from "../boot/dhcp-plan.ts";
import type { DhcpConfig } from "./config.ts";
import { BROADCAST, type DhcpRequest, type Outgoing, ZERO } from "./exchange.ts";
import { MessageType, Opt } from "./options.ts";
import { BROADCAST_FLAG } from "./packet.ts";
import type { Replies } from "./replies.ts";

export class ProxyResponder {
  constructor(
    private readonly config: DhcpConfig,
    private readonly replies: Replies,
  ) {}

  respond(r: DhcpRequest): Outgoing[] {
    const { req, inc, type } = r;
    const replies = this.replies;
    // Never answer non-PXE clients (an iPXE without option 60 cannot take a proxy offer either), machines
    // that should boot from disk, or arches we have nothing for.
    if (r.answer.kind !== "boot") return [];
    if (r.client.kind === "ipxe" && r.client.vendorClass === undefined) return [];
    const answer = r.answer;
    const links = inc.link ? [inc.link] : replies.links.length ? replies.links : [undefined];
    if (type === MessageType.DISCOVER && inc.port === "dhcp") {
      const full = proxyOfferCarriesFile(answer, this.config.proxyFullOffer);
      return links.map((link) => {
        const reply = replies.base(req, MessageType.OFFER, link);
        reply.flags |= BROADCAST_FLAG;
        replies.withBoot(reply, r, link, full ? "proxy-file" : "proxy-discover");
        replies.event(r, "dhcp.offer", { port: "dhcp", proxy: true, withFile: full, link: link?.name ?? null });
        const relayed = req.giaddr !== ZERO;
        return {
          packet: reply,
          link,
          port: "dhcp",
          address: relayed ? req.giaddr : BROADCAST,
          destPort: relayed ? this.config.port : this.config.clientPort,
        };
      });
    }
    const boots = type === MessageType.REQUEST || (type === MessageType.INFORM && inc.port === "proxy");
    if (!boots) return [];
    const serverId = req.options.get(Opt.ServerId);
    // On 67 a REQUEST is the real DHCP server's business, except boot-server discovery broadcast by a client
    // that already has its address (ciaddr set, naming us). An address request is never ours to answer.
    if (
      inc.port === "dhcp" &&
      (req.ciaddr === ZERO || req.options.has(Opt.RequestedIp) || serverId === undefined || !replies.isOurs(serverId))
    )
      return [];
    const link = inc.link ?? replies.linkFor(serverId) ?? replies.linkFor(req.ciaddr);
    const reply = replies.base(req, MessageType.ACK, link);
    reply.ciaddr = req.ciaddr;
    replies.withBoot(reply, r, link, "proxy-file");
    replies.event(r, "dhcp.ack", { port: inc.port, proxy: true, link: link?.name ?? null });
    // A 4011 request comes from a configured client: answer where it asked from.
    if (inc.port === "proxy")
      return [{ packet: reply, link, port: "proxy", address: inc.from.address, destPort: inc.from.port }];
    const relayed = req.giaddr !== ZERO;
    return [
      {
        packet: reply,
        link,
        port: "dhcp",
        address: relayed ? req.giaddr : req.ciaddr,
        destPort: relayed ? this.config.port : this.config.clientPort,
      },
    ];
  }
}
