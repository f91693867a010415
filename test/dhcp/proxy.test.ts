/**
 * Proxy mode in-process on loopback (relayed, so every reply goes to the relay address): which requests on
 * port 67 are Kindling's to answer, and which belong to the network's real DHCP server.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MessageType, Opt, PxeSub } from "../../src/dhcp/options.ts";
import type { DhcpOptions, DhcpPacket } from "../../src/dhcp/packet.ts";
import { type RelayLab, relayedRequest, startRelayLab } from "./relay-agent.ts";

const PORT = 40000 + (process.pid % 20000);
const RELAY = "127.0.0.3";
let lab: RelayLab;

beforeAll(async () => {
  lab = await startRelayLab({ mode: "proxy", proxyPort: 0, bootFiles: { efiX64: "snponly.efi" } }, PORT, RELAY);
});
afterAll(() => lab?.close());

/** A UEFI x64 PXE client's request, relayed. */
const req = (type: number, set: (o: DhcpOptions) => void, fields: Partial<DhcpPacket> = {}) =>
  relayedRequest(
    RELAY,
    "02:00:00:00:09:09",
    type,
    (o) => set(o.set(Opt.VendorClass, "PXEClient:Arch:00007:UNDI:003016").set(Opt.ClientArch, [7])),
    fields,
  );
const exchange = (p: DhcpPacket, expectReply: boolean) => lab.exchange(p, expectReply);

describe("proxy mode on port 67", () => {
  it("offers boot information without an address", async () => {
    const offer = await exchange(
      req(MessageType.DISCOVER, () => {}),
      true,
    );
    expect(offer).toMatchObject({ yiaddr: "0.0.0.0", siaddr: "127.0.0.1", file: "" });
    expect(offer!.options.get(Opt.VendorClass)).toBe("PXEClient");
    expect(offer!.options.has(Opt.LeaseTime)).toBe(false);
  });

  it("never answers an address request, even one naming Kindling", async () => {
    const r = await exchange(
      req(MessageType.REQUEST, (o) => o.set(Opt.ServerId, "127.0.0.1").set(Opt.RequestedIp, "127.0.0.50")),
      false,
    );
    expect(r).toBeUndefined();
    expect(
      await exchange(
        req(MessageType.REQUEST, (o) => o.set(Opt.ServerId, "127.9.9.9"), { ciaddr: "127.0.0.60" }),
        false,
      ),
    ).toBeUndefined();
  });

  it("answers boot-server discovery broadcast to 67 by a configured client with the file", async () => {
    const ack = await exchange(
      req(
        MessageType.REQUEST,
        (o) =>
          o
            .set(Opt.ServerId, "127.0.0.1")
            .set(Opt.VendorSpecific, new Map([[PxeSub.BootItem, Buffer.from("80000000", "hex")]])),
        { ciaddr: "127.0.0.60" },
      ),
      true,
    );
    expect(ack?.options.get(Opt.MessageType)).toBe(MessageType.ACK);
    expect(ack).toMatchObject({ yiaddr: "0.0.0.0", ciaddr: "127.0.0.60", file: "snponly.efi" });
    expect(ack!.options.get(Opt.VendorSpecific)?.get(PxeSub.BootItem)).toEqual(Buffer.from("80000000", "hex"));
  });
});
