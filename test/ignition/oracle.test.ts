import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseDataUrl } from "../../src/ignition/dataurl.ts";
import { unitSyntaxError } from "../../src/ignition/validate/unit-syntax.ts";
import { urlError } from "../../src/ignition/validate/url.ts";
import { inputs } from "./oracle/generate.ts";

/**
 * Kindling's ports of two checks Ignition makes with Go libraries — the unit-file parser (go-systemd) and the
 * resource URL check (net/url, the data URL parser, S3 ARNs) — against verdicts recorded from Ignition's own
 * code on seeded random inputs built around each rule's edges (test/ignition/tools/oracle-fixtures.ts).
 * Every input must be accepted or refused as Ignition does.
 */
const dir = fileURLToPath(new URL("./oracle/", import.meta.url));
const load = <T>(name: string) => (JSON.parse(readFileSync(`${dir}${name}`, "utf8")) as { cases: T[] }).cases;
const dataUrl = (u: string) => {
  try {
    parseDataUrl(u);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
};

const generated = inputs();

describe("unit file syntax, as go-systemd parses it", () => {
  const recorded = JSON.parse(readFileSync(`${dir}units.json`, "utf8")) as { inputs: string; errors: string[] };
  const cases = generated.units.map((text, i) => ({ text, error: recorded.errors[i] ?? "" }));
  it("the generator still gives the inputs the verdicts were recorded for", () => {
    expect(createHash("sha256").update(JSON.stringify(generated.units)).digest("hex")).toBe(recorded.inputs);
  });
  it("has cases on both sides", () => {
    expect(cases.length).toBeGreaterThanOrEqual(500);
    expect(cases.filter((c) => c.error).length).toBeGreaterThan(100);
    expect(cases.filter((c) => !c.error).length).toBeGreaterThan(100);
  });
  it("every text is accepted or refused as Ignition does", () => {
    const wrong = cases.filter((c) => (unitSyntaxError(c.text) === undefined) !== (c.error === ""));
    expect(wrong.map((c) => ({ text: c.text.slice(0, 80), ignition: c.error }))).toEqual([]);
  });
  it("lines of 2048 bytes or more are refused, as Ignition's parser does", () => {
    expect(unitSyntaxError(`[Service]\nExecStart=${"a".repeat(2038)}\n`)).toMatch(/line too long/);
    expect(unitSyntaxError(`[Service]\nExecStart=${"a".repeat(2037)}\n`)).toBeUndefined();
  });
});

describe("resource URLs, as Ignition validates them", () => {
  const cases = load<{ url: string; "3.3.0": string; "3.4.0": string }>("urls.json");
  it("has cases on both sides", () => {
    expect(cases.length).toBeGreaterThanOrEqual(400);
    expect(cases.filter((c) => c["3.4.0"]).length).toBeGreaterThan(100);
    expect(cases.filter((c) => !c["3.4.0"]).length).toBeGreaterThan(100);
  });
  for (const spec of ["3.3.0", "3.4.0"] as const) {
    it(`every URL is accepted or refused as Ignition does at ${spec}`, () => {
      const wrong = cases.filter((c) => (urlError(c.url, spec, dataUrl) === undefined) !== (c[spec] === ""));
      expect(wrong.map((c) => ({ url: c.url, ignition: c[spec] }))).toEqual([]);
    });
  }
});
