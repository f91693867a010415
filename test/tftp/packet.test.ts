import { describe, expect, it } from "vitest";
import { toNetascii } from "../../src/tftp/blocks.ts";
import { normaliseName } from "../../src/tftp/files.ts";
import { negotiate } from "../../src/tftp/options.ts";
import { decode, encode, MalformedPacket, Opcode, type Packet } from "../../src/tftp/packet.ts";

describe("packet codec", () => {
  const packets: Packet[] = [
    { op: Opcode.RRQ, filename: "undionly.kpxe", mode: "octet", options: new Map([["tsize", "0"], ["blksize", "1468"]]) },
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

describe("option negotiation", () => {
  const limits = { maxBlksize: 1468, maxWindowsize: 64, timeoutMs: 1000 };
  const ask = (o: Record<string, string>, size?: number) => negotiate(new Map(Object.entries(o)), limits, size);

  it("grants nothing when nothing is asked (plain RFC 1350)", () => {
    expect(ask({}, 10)).toEqual({ blksize: 512, windowsize: 1, timeoutMs: 1000, oack: new Map() });
  });
  it("caps blksize and windowsize at the configured limits", () => {
    const n = ask({ blksize: "65464", windowsize: "500", tsize: "0", timeout: "3" }, 1234);
    expect(n).toMatchObject({ blksize: 1468, windowsize: 64, timeoutMs: 3000 });
    expect(Object.fromEntries(n.oack)).toEqual({ blksize: "1468", windowsize: "64", tsize: "1234", timeout: "3" });
  });
  it("grants smaller values as asked", () => {
    expect(ask({ blksize: "8", windowsize: "1" })).toMatchObject({ blksize: 8, windowsize: 1 });
  });
  it.each([
    ["blksize", "7"],
    ["blksize", "65465"],
    ["blksize", "0"],
    ["blksize", "-1"],
    ["blksize", "1e3"],
    ["blksize", "99999999999999999999"],
    ["windowsize", "0"],
    ["windowsize", "65536"],
    ["timeout", "0"],
    ["timeout", "256"],
    ["tsize", "abc"],
    ["rollover", "1"],
  ])("ignores %s=%s", (name, value) => {
    expect(ask({ [name]: value }, 10).oack.size).toBe(0);
  });
  it("leaves tsize out when the size is not known in advance (netascii)", () => {
    expect(ask({ tsize: "0" }, undefined).oack.size).toBe(0);
  });
});

describe("file names", () => {
  it.each([
    ["/undionly.kpxe", "undionly.kpxe"],
    ["\\efi\\boot\\ipxe.efi", "efi/boot/ipxe.efi"],
    ["./a//b/./c", "a/b/c"],
  ])("normalises %s", (name, rel) => expect(normaliseName(name)).toBe(rel));
  it.each(["..", "../x", "a/../../x", "a\\..\\x", "x\0y", "/", "./"])("refuses %j", (name) => {
    expect(() => normaliseName(name)).toThrow();
  });
});

describe("netascii", () => {
  it("turns LF into CR LF and CR into CR NUL", () => {
    expect(toNetascii(Buffer.from("a\nb\rc\r\n"))).toEqual(Buffer.from("a\r\nb\r\0c\r\0\r\n", "latin1"));
  });
});
