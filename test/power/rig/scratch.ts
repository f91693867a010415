import { rmSync } from "node:fs";
import { afterAll } from "vitest";
import { tempDir } from "../../helpers/kindling.ts";

const dirs: string[] = [];
// Registered when a test file imports this: the file's own directories go when its tests are done.
afterAll(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A temporary directory removed after the importing test file's tests. */
export function scratchDir(prefix: string): string {
  const d = tempDir(prefix);
  dirs.push(d);
  return d;
}
