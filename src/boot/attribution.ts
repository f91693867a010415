import type { EventInput, EventSink } from "../model/event.ts";

/**
 * Which MAC was last seen at which IP: learned from DHCP (a lease names both) and from `/ipxe` (the request's
 * source address and its `mac=`). TFTP and HTTP asset requests carry only an IP; this lets their events join
 * the machine's boot story. Bounded in size and age, since any host on the network can send requests.
 */
export class RecentClients {
  private readonly byIp = new Map<string, { mac: string; at: number }>();

  constructor(
    private readonly maxEntries = 10_000,
    private readonly maxAgeMs = 6 * 3600_000,
  ) {}

  note(ip: string | undefined, mac: string | null | undefined, now = Date.now()): void {
    if (!ip || !mac || ip === "0.0.0.0") return;
    this.byIp.delete(ip); // re-insert: Map order is the eviction order
    this.byIp.set(ip, { mac, at: now });
    if (this.byIp.size > this.maxEntries) this.byIp.delete(this.byIp.keys().next().value!);
  }

  macOf(ip: string | undefined, now = Date.now()): string | undefined {
    const hit = ip ? this.byIp.get(normalizeIp(ip)) : undefined;
    return hit && now - hit.at <= this.maxAgeMs ? hit.mac : undefined;
  }
}

/** `::ffff:10.0.0.5` (a dual-stack socket's view of an IPv4 peer) → `10.0.0.5`. */
export function normalizeIp(ip: string): string {
  return ip.startsWith("::ffff:") ? ip.slice(7) : ip;
}

/**
 * An event sink that learns IP→MAC from events naming both, and fills in the MAC of events that name only
 * the client's IP (TFTP transfers).
 */
export function attributeByIp(sink: EventSink, recent: RecentClients): EventSink {
  return {
    append(e: EventInput) {
      const ip = typeof e.detail?.ip === "string" ? normalizeIp(e.detail.ip) : undefined;
      if (e.mac) recent.note(ip, e.mac);
      return sink.append(e.mac || !ip ? e : { ...e, mac: recent.macOf(ip) ?? null });
    },
  };
}
