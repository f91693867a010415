import { createSocket, type Socket } from "node:dgram";
import { DhcpConfigSchema } from "../../src/dhcp/config.ts";
import { decodePacket, type DhcpPacket } from "../../src/dhcp/packet.ts";
import { DhcpServer } from "../../src/dhcp/server.ts";
import { silentLogger } from "../../src/log.ts";
import type { EventInput } from "../../src/model/event.ts";
import { openDb } from "../../src/store/db.ts";
import { Store } from "../../src/store/index.ts";

export interface RelayLab {
  store: Store;
  server: DhcpServer;
  /** The relay agent's socket, bound at giaddr on the server port. */
  relay: Socket;
  /** Replies the relay received, decoded. */
  inbox: DhcpPacket[];
  events: EventInput[];
  close(): Promise<void>;
}

/**
 * The DHCP server in-process on loopback (high ports, no root needed) with an in-memory store, driven by a
 * socket playing a relay agent at `relayAddr`: relayed replies come back to it at the server port.
 */
export async function startRelayLab(config: Record<string, unknown>, port: number, relayAddr: string): Promise<RelayLab> {
  const store = new Store(openDb(":memory:"));
  const events: EventInput[] = [];
  const inbox: DhcpPacket[] = [];
  const server = await DhcpServer.start({
    config: DhcpConfigSchema.parse({ port, ...config }),
    advertise: "127.0.0.1",
    httpPort: 8080,
    tftpEnabled: true,
    db: store.db,
    machines: store.machines,
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
    async close() {
      await server.close();
      relay.close();
      store.close();
    },
  };
}
