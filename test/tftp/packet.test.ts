import { describe, expect, it } from "vitest";
import { dataHeader, decode, encode, encodeData, MalformedPacket, Opcode, type Packet } from "../../src/tftp/packet.ts";

describe("packet codec", () => {
  const packets: Packet[] = [
    {
      op: Opcode.RRQ,
      filename: "undionly.kpxe",
      mode: "octet",
      options: new Map([
        ["tsize", "0"],
        ["blksize", "1468"],
      ]),
    },
    { op: Opcode.WRQ, filename: "a/b", mode: "netascii", options: new Map() },
    { op: Opcode.DATA, block: 65535, payload: Buffer.from("hello") },
    { op: Opcode.DATA, block: 0, payload: Buffer.alloc(0) },
    { op: Opcode.ACK, block: 7 },
    { op: Opcode.ERROR, code: 5, message: "unknown transfer ID" },
    { op: Opcode.OACK, options: new Map([["windowsize", "16"]]) },
  ];
  it.each(packets.map((p) => [p.op, p] as const))("round-trips opcode %i", (_op, p) => {
    expect(decode(encode(p))).toEqual(p);
  });

  it("lower-cases mode and option names and keeps the first duplicate", () => {
    const p = decode(Buffer.from("\0\x01f\0OcTeT\0BLKSIZE\x001024\0blksize\x00512\0", "latin1"));
    expect(p).toEqual({ op: Opcode.RRQ, filename: "f", mode: "octet", options: new Map([["blksize", "1024"]]) });
  });

  it("wraps block numbers on the wire", () => {
    expect(encode({ op: Opcode.DATA, block: 65536 + 3, payload: Buffer.alloc(0) }).readUInt16BE(2)).toBe(3);
  });

  it.each([0, 1, 255, 256, 65535, 65536, 65536 + 3, 3 * 65536 + 1000])(
    "sends DATA %i as the shared header plus the payload, as encoded",
    (block) => {
      const payload = Buffer.from("payload");
      expect(Buffer.concat([dataHeader(block), payload])).toEqual(encodeData(block, payload));
    },
  );

  it.each([
    ["empty", ""],
    ["one byte", "\x01"],
    ["unknown opcode", "\0\x09abc\0"],
    ["opcode zero", "\0\0"],
    ["request without NUL", "\0\x01file"],
    ["request without mode", "\0\x01file\0"],
    ["empty filename", "\0\x01\0octet\0"],
    ["option without value", "\0\x01f\0octet\0blksize\0"],
    ["option value without NUL", "\0\x01f\0octet\0blksize\x00512"],
    ["truncated ACK", "\0\x04\x01"],
    ["truncated DATA", "\0\x03"],
    ["truncated ERROR", "\0\x05\0"],
  ])("rejects %s", (_name, bytes) => {
    expect(() => decode(Buffer.from(bytes, "latin1"))).toThrow(MalformedPacket);
  });
});
