import { describe, expect, it } from "vitest";
import { macFromBytes, normalizeArch, normalizeMac, normalizeUuid } from "../../src/model/identity.ts";

describe("normalizeMac", () => {
  it.each([
    ["52:54:00:aa:bb:cc", "52:54:00:aa:bb:cc"],
    ["52:54:00:AA:BB:CC", "52:54:00:aa:bb:cc"],
    ["52-54-00-aa-bb-cc", "52:54:00:aa:bb:cc"],
    ["5254.00aa.bbcc", "52:54:00:aa:bb:cc"],
    ["525400AABBCC", "52:54:00:aa:bb:cc"],
    ["  52:54:00:aa:bb:cc\n", "52:54:00:aa:bb:cc"],
  ])("%j → %s", (input, want) => expect(normalizeMac(input)).toBe(want));

  it.each([
    "",
    "zz:54:00:aa:bb:cc",
    "52:54:00:aa:bb",
    "52:54:00:aa:bb:cc:dd",
    "52:54-00:aa:bb:cc",
    "5254.00aa.bbc",
    "52:54:00:aa:bb:c",
    "g25400aabbcc",
  ])("rejects %j", (input) => expect(normalizeMac(input)).toBeNull());

  it("reads chaddr bytes", () =>
    expect(macFromBytes(Uint8Array.from([0x52, 0x54, 0, 0xa, 0xbb, 0xcc, 9, 9]))).toBe("52:54:00:0a:bb:cc"));
});

describe("normalizeUuid / normalizeArch", () => {
  it("keeps well-formed UUIDs lower-case and drops the rest", () => {
    expect(normalizeUuid("4C4C4544-0042-3010-8052-B4C04F4E4D32")).toBe("4c4c4544-0042-3010-8052-b4c04f4e4d32");
    expect(normalizeUuid("")).toBeUndefined();
    expect(normalizeUuid("not-a-uuid")).toBeUndefined();
  });
  it("maps iPXE buildarch names to Flatcar arches, i386 (BIOS undionly) to amd64", () => {
    expect(normalizeArch("x86_64")).toBe("amd64");
    expect(normalizeArch("i386")).toBe("amd64");
    expect(normalizeArch("arm64")).toBe("arm64");
    expect(normalizeArch("riscv64")).toBeUndefined();
  });
});
