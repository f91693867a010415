import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { IgnitionError, translateButane } from "../../src/ignition/index.ts";

/**
 * Kindling's own messages: `corpus/bad/<case>.bu` must fail with every line of `<case>.err` in the error
 * (position and JSON path included). `strict-*` cases run with --strict. What the outputs and the refusals must
 * be is Butane's, checked for every corpus case by butane-diff.test.ts.
 */
const corpus = fileURLToPath(new URL("./corpus/", import.meta.url));
const filesDir = `${corpus}files`;
const cases = (dir: string) =>
  readdirSync(dir)
    .filter((f) => f.endsWith(".bu"))
    .map((f) => f.slice(0, -3))
    .sort();

describe("Butane corpus: negative cases", () => {
  const bad = `${corpus}bad/`;
  it("has cases", () => expect(cases(bad).length).toBeGreaterThanOrEqual(30));
  for (const name of cases(bad)) {
    it(name, () => {
      const text = readFileSync(`${bad}${name}.bu`, "utf8");
      const opts = { strict: name.startsWith("strict-"), ...(name === "local-no-files-dir" ? {} : { filesDir }) };
      let error: unknown;
      try {
        translateButane(text, opts);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(IgnitionError);
      const message = (error as IgnitionError).message;
      for (const line of readFileSync(`${bad}${name}.err`, "utf8").trim().split("\n")) expect(message).toContain(line);
    });
  }
});
