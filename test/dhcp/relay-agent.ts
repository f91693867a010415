import { createSocket, type Socket } from "node:dgram";
import { DhcpConfigSchema } from "../../src/dhcp/config.ts";
import { Opt } from "../../src/dhcp/options.ts";
import { DhcpOptions, type DhcpPacket, decodePacket, encodePacket } from "../../src/dhcp/packet.ts";
import { DhcpServer } from "../../src/dhcp/server.ts";
import { silentLogger } from "../../src/log.ts";
import type { EventInput } from "../../src/model/event.ts";
import { openDb } from "../../src/store/db.ts";
import { Store } from "../../src/store/index.ts";
import { machinesFor } from "../helpers/machines.ts";

export interface RelayLab {
  store: Store;
  server: DhcpServer;
  /** The relay agent's socket, bound at giaddr on the server port. */
  relay: Socket;
  /** Replies the relay received, decoded. */
  inbox: DhcpPacket[];
  events: EventInput[];
  /** Sends `p` from the relay and waits for the reply with its xid (3 s), or for none (300 ms). */
  exchange(p: DhcpPacket, expectReply?: boolean): Promise<DhcpPacket | undefined>;
  close(): Promise<void>;
}

let xid = 1;
/** A request as a relay agent at `giaddr` forwards it; `set` adds options, `fields` overrides header fields. */
export function relayedRequest(
  giaddr: string,
  mac: string,
  type: number,
  set: (o: DhcpOptions) => void = () => {},
  fields: Partial<DhcpPacket> = {},
): DhcpPacket {
  const chaddr = Buffer.alloc(16);
  Buffer.from(mac.replace(/:/g, ""), "hex").copy(chaddr);
  const options = new DhcpOptions().set(Opt.MessageType, type);
  set(options);
  return {
    op: 1,
    htype: 1,
    hlen: 6,
    hops: 1,
    xid: xid++,
    secs: 0,
    flags: 0,
    ciaddr: "0.0.0.0",
    yiaddr: "0.0.0.0",
    siaddr: "0.0.0.0",
    giaddr,
    chaddr,
    sname: "",
    file: "",
    options,
    ...fields,
  };
}

/**
 * The DHCP server in-process on loopback (high ports, no root needed) with an in-memory store, driven by a
 * socket playing a relay agent at `relayAddr`: relayed replies come back to it at the server port.
 */
export async function startRelayLab(
  config: Record<string, unknown>,
  port: number,
  relayAddr: string,
): Promise<RelayLab> {
  const store = new Store(openDb(":memory:"));
  const events: EventInput[] = [];
  const inbox: DhcpPacket[] = [];
  const server = await DhcpServer.start({
    config: DhcpConfigSchema.parse({ port, ...config }),
    advertise: "127.0.0.1",
    httpPort: 8080,
    tftpEnabled: true,
    db: store.db,
    machines: machinesFor(store),
    events: { append: (e) => void events.push(e) },
    log: silentLogger,
  });
  const relay = createSocket({ type: "udp4", reuseAddr: true });
  await new Promise<void>((r) => relay.bind(port, relayAddr, r));
  relay.on("message", (msg) => {
    const d = decodePacket(msg);
    if (d.ok) inbox.push(d.packet);
  });
  return {
    store,
    server,
    relay,
    inbox,
    events,
    async exchange(p, expectReply = true) {
      inbox.length = 0;
      relay.send(encodePacket(p), port, "127.0.0.1");
      const end = Date.now() + (expectReply ? 3000 : 300);
      while (Date.now() < end) {
        const hit = inbox.find((r) => r.xid === p.xid);
        if (hit) return hit;
        await new Promise((r) => setTimeout(r, 10));
      }
      return undefined;
    },
    async close() {
      await server.close();
      relay.close();
      store.close();
    },
  };
}
