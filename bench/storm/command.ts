import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";

const REPO = resolve(import.meta.dirname, "../..");

/** The installed `kindling` command: node running the package's bin entry. */
export function kindlingCommand(): string[] {
  const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { bin: Record<string, string> };
  return [process.execPath, join(REPO, pkg.bin.kindling!)];
}
