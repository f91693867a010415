/** Packet and option codec: round trips for every option Kindling knows, overload, padding, malformed input. */
import { describe, expect, it } from "vitest";
import {
  ipToBuf,
  type KnownOption,
  MessageType,
  OPTION_CODECS,
  Opt,
  OptionError,
  PxeSub,
  userClassCodec,
} from "../../src/dhcp/options.ts";
import {
  BROADCAST_FLAG,
  DhcpOptions,
  type DhcpPacket,
  decodePacket,
  encodePacket,
  MAGIC_COOKIE,
  MAX_OPTION_INSTANCES,
  MAX_PACKET_BYTES,
  MIN_REPLY,
} from "../../src/dhcp/packet.ts";

function packet(options: DhcpOptions, extra: Partial<DhcpPacket> = {}): DhcpPacket {
  const chaddr = Buffer.alloc(16);
  Buffer.from("525400aabbcc", "hex").copy(chaddr);
  return {
    op: 1,
    htype: 1,
    hlen: 6,
    hops: 0,
    xid: 0xdeadbeef,
    secs: 4,
    flags: BROADCAST_FLAG,
    ciaddr: "0.0.0.0",
    yiaddr: "10.0.0.5",
    siaddr: "10.0.0.1",
    giaddr: "10.9.0.1",
    chaddr,
    sname: "",
    file: "",
    options,
    ...extra,
  };
}

function roundTrip(p: DhcpPacket, max?: number): DhcpPacket {
  const d = decodePacket(encodePacket(p, max));
  if (!d.ok) throw new Error(d.reason);
  return d.packet;
}

/** One sample value for every option in the table; the test below fails if an option is added without one. */
const SAMPLES: { [C in KnownOption]: unknown } = {
  [Opt.SubnetMask]: "255.255.255.0",
  [Opt.Router]: ["10.0.0.1", "10.0.0.2"],
  [Opt.DnsServers]: ["1.1.1.1"],
  [Opt.Hostname]: "node-1",
  [Opt.DomainName]: "lab.example",
  [Opt.BroadcastAddress]: "10.0.0.255",
  [Opt.VendorSpecific]: new Map([
    [PxeSub.DiscoveryControl, Buffer.from([8])],
    [PxeSub.BootServers, Buffer.from("80000100000001", "hex")],
    [PxeSub.BootMenu, Buffer.from("8000044b696e64", "hex")],
    [PxeSub.MenuPrompt, Buffer.from("0a426f6f74", "hex")],
    [PxeSub.BootItem, Buffer.from("80000000", "hex")],
  ]),
  [Opt.RequestedIp]: "10.0.0.7",
  [Opt.LeaseTime]: 86400,
  [Opt.Overload]: 3,
  [Opt.MessageType]: MessageType.REQUEST,
  [Opt.ServerId]: "10.0.0.1",
  [Opt.ParameterList]: [1, 3, 6, 15, 66, 67, 175],
  [Opt.Message]: "address not on this network",
  [Opt.MaxMessageSize]: 1472,
  [Opt.RenewalTime]: 43200,
  [Opt.RebindingTime]: 75600,
  [Opt.VendorClass]: "PXEClient:Arch:00007:UNDI:003016",
  [Opt.ClientId]: Buffer.from("01525400aabbcc", "hex"),
  [Opt.TftpServer]: "10.0.0.1",
  [Opt.BootFile]: "undionly.kpxe",
  [Opt.UserClass]: { classes: ["iPXE"], rfc3004: false },
  [Opt.RelayAgent]: new Map([
    [1, Buffer.from("eth0/1")],
    [2, Buffer.from([1, 2, 3, 4, 5, 6])],
  ]),
  [Opt.ClientArch]: [7],
  [Opt.ClientNdi]: { type: 1, major: 3, minor: 16 },
  [Opt.ClientGuid]: "4c4c4544-0051-3510-8052-b4c04f4b4e31",
  [Opt.Ipxe]: new Map([
    [176, Buffer.from([1])],
    [19, Buffer.from([1])],
  ]),
};

describe("options", () => {
  it.each(Object.keys(OPTION_CODECS).map(Number) as KnownOption[])(
    "option %i round-trips through a whole packet",
    (code) => {
      if (code === Opt.Overload) return void expect(OPTION_CODECS[code].decode(OPTION_CODECS[code].encode(3))).toBe(3);
      const opts = new DhcpOptions().set(Opt.MessageType, MessageType.DISCOVER);
      (opts.set as (c: KnownOption, v: unknown) => void)(code, SAMPLES[code]);
      expect(roundTrip(packet(opts)).options.get(code)).toEqual(SAMPLES[code]);
    },
  );

  it("has a sample for every option in the table", () => {
    expect(Object.keys(SAMPLES).sort()).toEqual(Object.keys(OPTION_CODECS).sort());
  });

  it("reads option 77 as iPXE's raw bytes or as RFC 3004 framing", () => {
    expect(userClassCodec.decode(Buffer.from("iPXE"))).toEqual({ classes: ["iPXE"], rfc3004: false });
    expect(userClassCodec.decode(Buffer.from("\x04iPXE\x03foo", "latin1"))).toEqual({
      classes: ["iPXE", "foo"],
      rfc3004: true,
    });
    expect(userClassCodec.encode({ classes: ["iPXE", "foo"], rfc3004: true })).toEqual(
      Buffer.from("\x04iPXE\x03foo", "latin1"),
    );
    // A length byte that overruns means the bytes were never RFC 3004.
    expect(userClassCodec.decode(Buffer.from("\x09ab", "latin1"))).toEqual({ classes: ["\x09ab"], rfc3004: false });
  });

  it("stores option 97 with the first three UUID fields little-endian", () => {
    const b = OPTION_CODECS[Opt.ClientGuid].encode("4c4c4544-0051-3510-8052-b4c04f4b4e31");
    expect(b.toString("hex")).toBe("0044454c4c5100103580" + "52b4c04f4b4e31");
  });

  it("parses dotted quads strictly", () => {
    expect(ipToBuf("10.0.255.1")).toEqual(Buffer.from([10, 0, 255, 1]));
    for (const bad of ["1.2.3", "1.2.3.4.5", "1.2.3.256", "1..2.3", "a.b.c.d", "1.2.3.4 ", "", "1234.1.1.1"])
      expect(() => ipToBuf(bad), bad).toThrow(OptionError);
  });

  it("keeps unknown options and option 82 byte for byte", () => {
    const relay = Buffer.from("0106657468302f31020401020304", "hex");
    const opts = new DhcpOptions()
      .set(Opt.MessageType, 1)
      .setRaw(Opt.RelayAgent, relay)
      .setRaw(224, Buffer.from("cafe", "hex"));
    const back = roundTrip(packet(opts));
    expect(back.options.raw.get(Opt.RelayAgent)).toEqual(relay);
    expect(back.options.raw.get(224)).toEqual(Buffer.from("cafe", "hex"));
  });

  it("rejects malformed typed values with a reason", () => {
    const opts = new DhcpOptions().setRaw(Opt.ServerId, Buffer.from([10, 0, 0]));
    expect(() => opts.get(Opt.ServerId)).toThrow(OptionError);
    expect(() => new DhcpOptions().setRaw(Opt.ClientGuid, Buffer.alloc(16)).get(Opt.ClientGuid)).toThrow(/client GUID/);
    expect(() => new DhcpOptions().setRaw(Opt.VendorSpecific, Buffer.from([6, 5, 1])).get(Opt.VendorSpecific)).toThrow(
      /past the end/,
    );
  });
});

describe("packets", () => {
  it("round-trips the fixed fields, pads replies to 300 bytes and NUL-terminates sname/file", () => {
    const p = packet(new DhcpOptions().set(Opt.MessageType, MessageType.OFFER), {
      op: 2,
      sname: "kindling",
      file: "undionly.kpxe",
    });
    const bytes = encodePacket(p);
    expect(bytes.length).toBeGreaterThanOrEqual(MIN_REPLY);
    expect(bytes[44 + "kindling".length]).toBe(0);
    expect(bytes[108 + "undionly.kpxe".length]).toBe(0);
    const back = roundTrip(p);
    const { options: _a, ...fields } = back;
    const { options: _b, ...expected } = p;
    expect(fields).toEqual(expected);
  });

  it("moves a boot file too long for the file field into option 67, never truncating it", () => {
    const url = `http://10.0.0.1:8080/ipxe-bin/${"x".repeat(150)}.efi`;
    const back = roundTrip(packet(new DhcpOptions().set(Opt.MessageType, 2), { file: url }));
    expect(back.file).toBe("");
    expect(back.options.get(Opt.BootFile)).toBe(url);
  });

  it("a full file field (127 chars) still ends with NUL", () => {
    const file = "f".repeat(127);
    const bytes = encodePacket(packet(new DhcpOptions().set(Opt.MessageType, 2), { file }));
    expect(bytes[108 + 126]).toBe(0x66);
    expect(bytes[108 + 127]).toBe(0);
  });

  it("overloads file and sname (option 52) when options exceed the size, and reads them back", () => {
    const opts = new DhcpOptions().set(Opt.MessageType, MessageType.ACK);
    // 11 × 42 bytes: more than the 332 left in a 576-byte message, less than that plus file and sname.
    for (let code = 200; code < 211; code++) opts.setRaw(code, Buffer.alloc(40, code));
    const bytes = encodePacket(packet(opts), 576);
    expect(bytes.length).toBeLessThanOrEqual(576);
    expect(bytes.subarray(240, 243)).toEqual(Buffer.from([Opt.Overload, 1, 3]));
    const back = decodePacket(bytes);
    if (!back.ok) throw new Error(back.reason);
    for (let code = 200; code < 211; code++) expect(back.packet.options.raw.get(code)).toEqual(Buffer.alloc(40, code));
    expect(back.packet.file).toBe("");
  });

  it("splits values over 255 bytes into consecutive instances and joins them again (RFC 3396)", () => {
    const long = Buffer.alloc(600, 7);
    const back = roundTrip(packet(new DhcpOptions().set(Opt.MessageType, 2).setRaw(250, long)), 1500);
    expect(back.options.raw.get(250)).toEqual(long);
  });

  it("joins a code repeated in the options, file and sname areas in wire order", () => {
    const p = encodePacket(packet(new DhcpOptions().set(Opt.MessageType, 1)), 576);
    const body = Buffer.from([52, 1, 3, 53, 1, 1, 250, 2, 1, 2, 250, 1, 3, 255]);
    body.copy(p, 240);
    Buffer.from([250, 1, 4, 255]).copy(p, 108);
    Buffer.from([250, 2, 5, 6, 255]).copy(p, 44);
    const d = decodePacket(p);
    if (!d.ok) throw new Error(d.reason);
    expect(d.packet.options.raw.get(250)).toEqual(Buffer.from([1, 2, 3, 4, 5, 6]));
  });

  it("joins repeated sub-options of 43/82/175 in order", () => {
    const v = Buffer.from([71, 2, 0x80, 0, 6, 1, 8, 71, 2, 0, 0]);
    expect(OPTION_CODECS[Opt.VendorSpecific].decode(v)).toEqual(
      new Map([
        [71, Buffer.from([0x80, 0, 0, 0])],
        [6, Buffer.from([8])],
      ]),
    );
  });

  it("drops trailing NULs of a string option, also after a long run of them", () => {
    expect(OPTION_CODECS[Opt.VendorClass].decode(Buffer.from("PXEClient\0\0"))).toBe("PXEClient");
    const nuls = Buffer.concat([Buffer.alloc(3000), Buffer.from("x")]);
    expect(OPTION_CODECS[Opt.VendorClass].decode(nuls)).toBe(nuls.toString("latin1"));
  });

  /** A request whose options are `body`, padded with END to `size` bytes. */
  const withBody = (body: Buffer, size: number) => {
    const b = Buffer.alloc(size, 255);
    encodePacket(packet(new DhcpOptions())).copy(b, 0, 0, 240);
    body.copy(b, 240);
    return b;
  };
  const repeated = (n: number) => Buffer.concat(Array.from({ length: n }, () => Buffer.from([53, 1, 1])));

  it(`reads up to ${MAX_OPTION_INSTANCES} option instances and refuses more`, () => {
    const ok = decodePacket(withBody(repeated(MAX_OPTION_INSTANCES), 240 + 3 * MAX_OPTION_INSTANCES + 1));
    expect(ok.ok && ok.packet.options.raw.get(Opt.MessageType)!.length).toBe(MAX_OPTION_INSTANCES);
    const over = decodePacket(withBody(repeated(MAX_OPTION_INSTANCES + 1), MAX_PACKET_BYTES));
    expect(over).toEqual({ ok: false, reason: `more than ${MAX_OPTION_INSTANCES} options` });
  });

  it(`refuses a datagram over ${MAX_PACKET_BYTES} bytes before reading any option`, () => {
    // 64 KiB of one option repeated ~21,000 times: the datagram that used to cost a quadratic join.
    const huge = withBody(repeated(21_800), 65_507);
    expect(decodePacket(huge)).toEqual({ ok: false, reason: `65507 bytes, more than ${MAX_PACKET_BYTES}` });
    expect(decodePacket(withBody(Buffer.from([53, 1, 1]), MAX_PACKET_BYTES)).ok).toBe(true);
  });

  const valid = encodePacket(packet(new DhcpOptions().set(Opt.MessageType, 1).set(Opt.VendorClass, "PXEClient")));
  const mutate = (fn: (b: Buffer) => Buffer | undefined) => {
    const b = Buffer.from(valid);
    return fn(b) ?? b;
  };
  it.each([
    ["truncated header", valid.subarray(0, 100), /truncated/],
    ["empty", Buffer.alloc(0), /truncated/],
    ["missing magic cookie", mutate((b) => void b.writeUInt32BE(0x12345678, 236)), /magic cookie/],
    ["bad op", mutate((b) => void (b[0] = 9)), /bad op/],
    ["absurd hlen", mutate((b) => void (b[2] = 200)), /hlen/],
    ["absurd hops", mutate((b) => void (b[3] = 200)), /hops/],
    [
      "option length past the end",
      Buffer.concat([valid.subarray(0, 240), Buffer.from([60, 200, 65, 66])]),
      /runs past the end/,
    ],
    ["option without length byte", Buffer.concat([valid.subarray(0, 240), Buffer.from([53])]), /no length/],
    ["bad overload value", Buffer.concat([valid.subarray(0, 240), Buffer.from([52, 1, 9, 255])]), /overload/],
    [
      "overload into a garbage file field",
      mutate((b) => {
        b.fill(0x33, 108, 236);
        return Buffer.concat([b.subarray(0, 240), Buffer.from([52, 1, 1, 53, 1, 1, 255])]);
      }),
      /file field/,
    ],
  ])("rejects %s with a reason", (_name, bytes, reason) => {
    const d = decodePacket(bytes);
    expect(d.ok).toBe(false);
    if (!d.ok) expect(d.reason).toMatch(reason);
  });

  it("never throws on random or mutated input", () => {
    let seed = 12345;
    const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    let rejected = 0;
    for (let i = 0; i < 5000; i++) {
      const b =
        i % 2
          ? Buffer.from(Array.from({ length: Math.floor(rnd() * 600) }, () => Math.floor(rnd() * 256)))
          : Buffer.from(valid);
      if (i % 2 === 0) for (let k = 0; k < 8; k++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
      const d = decodePacket(b);
      if (!d.ok) rejected++;
      else
        for (const code of Object.keys(OPTION_CODECS).map(Number) as KnownOption[]) {
          try {
            d.packet.options.get(code);
          } catch (err) {
            expect(err).toBeInstanceOf(OptionError);
          }
        }
    }
    expect(rejected).toBeGreaterThan(2000);
  });

  it("writes the magic cookie", () => {
    expect(valid.readUInt32BE(236)).toBe(MAGIC_COOKIE);
  });
});
