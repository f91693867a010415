import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";

/** The layering rules of docs/design-notes.md ("One owner for the machine"), checked on the source itself. */
const SRC = join(import.meta.dirname, "..", "src");
const files = (readdirSync(SRC, { recursive: true }) as string[])
  .filter((f) => /\.tsx?$/.test(f))
  .map((f) => ({ path: relative(SRC, join(SRC, f)), text: readFileSync(join(SRC, f), "utf8") }));
const outside = (dir: string) => files.filter((f) => !f.path.startsWith(`${dir}/`));

describe("layering", () => {
  it("only store/ talks to the database engine", () => {
    const offenders = outside("store").filter((f) =>
      /from "better-sqlite3"|\bdb\.(prepare|exec|pragma|transaction)\(|\.prepare\("(SELECT|INSERT|UPDATE|DELETE)/.test(
        f.text,
      ),
    );
    expect(offenders.map((f) => f.path)).toEqual([]);
  });

  it("model/ imports nothing but model/ and libraries", () => {
    const offenders = files.filter((f) => f.path.startsWith("model/")).filter((f) => /from "\.\.\//.test(f.text));
    expect(offenders.map((f) => f.path)).toEqual([]);
  });

  it("only the machine owner (boot/machines.ts) changes machine records", () => {
    const writes = /\.machines\.(create|update|setState|delete)\(|\.recordSighting\(|\.history\.touched\(/;
    const offenders = outside("store").filter((f) => f.path !== "boot/machines.ts" && writes.test(f.text));
    expect(offenders.map((f) => f.path)).toEqual([]);
  });

  it("finds the files it checks", () => {
    expect(files.some((f) => f.path === "boot/machines.ts")).toBe(true);
    expect(files.filter((f) => f.path.startsWith("store/")).length).toBeGreaterThan(5);
  });
});
