/**
 * Proxy mode in-process on loopback (relayed, so every reply goes to the relay address): which requests on
 * port 67 are Kindling's to answer, and which belong to the network's real DHCP server.
 */
import type { Socket } from "node:dgram";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MessageType, Opt, PxeSub } from "../../src/dhcp/options.ts";
import { DhcpOptions, encodePacket, type DhcpPacket } from "../../src/dhcp/packet.ts";
import { DhcpServer } from "../../src/dhcp/server.ts";
import { Store } from "../../src/store/index.ts";
import { startRelayLab, type RelayLab } from "./relay-agent.ts";

const PORT = 40000 + (process.pid % 20000);
const RELAY = "127.0.0.3";
let lab: RelayLab;
let store: Store;
let server: DhcpServer;
let relay: Socket;
let inbox: DhcpPacket[];

beforeAll(async () => {
  lab = await startRelayLab({ mode: "proxy", proxyPort: 0, bootFiles: { efiX64: "snponly.efi" } }, PORT, RELAY);
  ({ store, server, relay, inbox } = lab);
});
afterAll(() => lab?.close());

let xid = 100;
function req(type: number, set: (o: DhcpOptions) => void, fields: Partial<DhcpPacket> = {}): DhcpPacket {
  const chaddr = Buffer.alloc(16);
  Buffer.from("020000000909", "hex").copy(chaddr);
  const options = new DhcpOptions().set(Opt.MessageType, type).set(Opt.VendorClass, "PXEClient:Arch:00007:UNDI:003016").set(Opt.ClientArch, [7]);
  set(options);
  return { op: 1, htype: 1, hlen: 6, hops: 1, xid: xid++, secs: 0, flags: 0, ciaddr: "0.0.0.0", yiaddr: "0.0.0.0", siaddr: "0.0.0.0", giaddr: RELAY, chaddr, sname: "", file: "", options, ...fields };
}
async function exchange(p: DhcpPacket, expectReply: boolean): Promise<DhcpPacket | undefined> {
  inbox.length = 0;
  relay.send(encodePacket(p), PORT, "127.0.0.1");
  const end = Date.now() + (expectReply ? 3000 : 300);
  while (Date.now() < end) {
    const hit = inbox.find((r) => r.xid === p.xid);
    if (hit) return hit;
    await new Promise((r) => setTimeout(r, 10));
  }
  return undefined;
}

describe("proxy mode on port 67", () => {
  it("offers boot information without an address", async () => {
    const offer = await exchange(req(MessageType.DISCOVER, () => {}), true);
    expect(offer).toMatchObject({ yiaddr: "0.0.0.0", siaddr: "127.0.0.1", file: "" });
    expect(offer!.options.get(Opt.VendorClass)).toBe("PXEClient");
    expect(offer!.options.has(Opt.LeaseTime)).toBe(false);
  });

  it("never answers an address request, even one naming Kindling", async () => {
    const r = await exchange(req(MessageType.REQUEST, (o) => o.set(Opt.ServerId, "127.0.0.1").set(Opt.RequestedIp, "127.0.0.50")), false);
    expect(r).toBeUndefined();
    expect(await exchange(req(MessageType.REQUEST, (o) => o.set(Opt.ServerId, "127.9.9.9"), { ciaddr: "127.0.0.60" }), false)).toBeUndefined();
  });

  it("answers boot-server discovery broadcast to 67 by a configured client with the file", async () => {
    const ack = await exchange(
      req(MessageType.REQUEST, (o) => o.set(Opt.ServerId, "127.0.0.1").set(Opt.VendorSpecific, new Map([[PxeSub.BootItem, Buffer.from("80000000", "hex")]])), { ciaddr: "127.0.0.60" }),
      true,
    );
    expect(ack?.options.get(Opt.MessageType)).toBe(MessageType.ACK);
    expect(ack).toMatchObject({ yiaddr: "0.0.0.0", ciaddr: "127.0.0.60", file: "snponly.efi" });
    expect(ack!.options.get(Opt.VendorSpecific)?.get(PxeSub.BootItem)).toEqual(Buffer.from("80000000", "hex"));
  });
});
