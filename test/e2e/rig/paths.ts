import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";

export const REPO = resolve(import.meta.dirname, "..", "..", "..");

/** A fresh directory for one scenario's serial log, server logs and capture (git-ignored). */
export function scenarioDir(name: string): string {
  const dir = join(REPO, "test-artifacts", "e2e", `${name}-${new Date().toISOString().replace(/[:.]/g, "-")}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}
