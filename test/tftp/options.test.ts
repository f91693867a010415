import { describe, expect, it } from "vitest";
import { negotiate } from "../../src/tftp/options.ts";

describe("option negotiation", () => {
  const limits = { maxBlksize: 1468, maxWindowsize: 64, timeoutMs: 1000, maxTimeoutMs: 5000 };
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
  it("grants a timeout up to maxTimeoutMs and refuses a longer one rather than lowering it (RFC 2349)", () => {
    expect(ask({ timeout: "5" })).toMatchObject({ timeoutMs: 5000, oack: new Map([["timeout", "5"]]) });
    const n = ask({ timeout: "255", blksize: "1468" });
    expect(n.timeoutMs).toBe(1000);
    expect(Object.fromEntries(n.oack)).toEqual({ blksize: "1468" });
  });
  it("leaves tsize out when the size is not known in advance (netascii)", () => {
    expect(ask({ tsize: "0" }, undefined).oack.size).toBe(0);
  });
});
