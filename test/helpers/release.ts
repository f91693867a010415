import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildRelease, makeKey, Origin } from "../flatcar/fixture.ts";
import { type Running, startTestKindling, tempDir } from "./kindling.ts";

export const VERSION = "4593.2.5";

/**
 * Kindling whose Flatcar origin is a signed release tree on loopback (stable, amd64, `current` = VERSION),
 * standing in for the Flatcar CDN; the test key is pinned like the real one is.
 */
export async function startWithRelease(
  overrides: Record<string, unknown> = {},
): Promise<{ k: Running; origin: Origin; stop(): Promise<void> }> {
  const key = await makeKey();
  const origin = await new Origin().start();
  origin.addRelease(
    "stable",
    "amd64-usr",
    VERSION,
    await buildRelease(key, VERSION, { kernel: 2000, initrd: 2000, image: 4000 }),
  );
  origin.setCurrent("stable", "amd64-usr", VERSION);
  const dataDir = tempDir();
  writeFileSync(join(dataDir, "test-key.asc"), key.armoredPublic);
  const k = await startTestKindling(
    {
      ...overrides,
      flatcar: {
        origin: `${origin.url}/{channel}/{board}`,
        signingKey: join(dataDir, "test-key.asc"),
        signingFingerprint: key.fingerprint,
      },
    },
    dataDir,
  );
  return {
    k,
    origin,
    async stop() {
      await k.stop();
      await origin.close();
    },
  };
}

/** Asks /ipxe until the answer contains `text` (the mirror syncs in the background), bounded in time. */
export async function ipxeUntil(k: Running, query: string, text: string, timeoutMs = 20_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let body = "";
  while (Date.now() < deadline) {
    body = await (await fetch(`${k.url}/ipxe?${query}`)).text();
    if (body.includes(text)) return body;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no ${JSON.stringify(text)} in /ipxe?${query} within ${timeoutMs} ms; last answer:\n${body}`);
}
