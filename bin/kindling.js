#!/usr/bin/env node
// Runs the compiled JavaScript in dist/ (`npm run build`, which `npm ci` runs as `prepare`): it starts in
// about a third of the time tsx takes and holds about 40 MB less memory. When dist/ is missing, or older
// than a file under src/ (an edited checkout), tsx runs the TypeScript sources instead, so the command
// never runs stale code.
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const dist = join(import.meta.dirname, "..", "dist", "cli.js");
const src = join(import.meta.dirname, "..", "src");

function distIsCurrent() {
  if (!existsSync(dist)) return false;
  // An installed package or image may ship dist/ alone: then there is nothing it could be behind.
  if (!existsSync(src)) return true;
  const built = statSync(dist).mtimeMs;
  for (const f of readdirSync(src, { recursive: true })) {
    if (statSync(join(src, f)).mtimeMs > built) return false;
  }
  return true;
}

if (distIsCurrent()) {
  await import("../dist/cli.js");
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import("../src/cli.ts");
}
