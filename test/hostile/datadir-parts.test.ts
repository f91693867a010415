/**
 * A killed `kindling assets sync` (issue item 9) against real processes: the `.part` it leaves is never served,
 * the next sync resumes it, `assets prune` removes it; a sync that is still running is never disturbed. Also
 * shows that `kindling assets` works on the data dir of a running `kindling serve` (item 4 leaves it alone).
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assetsDir } from "../../src/files/assets.ts";
import { FlatcarConfigSchema } from "../../src/flatcar/config.ts";
import { MANIFEST } from "../../src/flatcar/layout.ts";
import { Mirror } from "../../src/flatcar/mirror.ts";
import { IMAGE, PXE_INITRD, PXE_KERNEL } from "../../src/flatcar/release.ts";
import { silentLogger } from "../../src/log.ts";
import { ProfileCreateSchema } from "../../src/model/profile.ts";
import { Store } from "../../src/store/index.ts";
import { buildRelease, CollectingSink, makeKey, Origin, type TestKey } from "../flatcar/fixture.ts";
import { startTestKindling } from "../helpers/kindling.ts";
import { BIN } from "./serve-process.ts";

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "../..");
const SIZES = { kernel: 300_000, initrd: 300_000, image: 3_000_000 };
const FILES = [PXE_KERNEL, PXE_INITRD, IMAGE];

let key: TestKey;
let work: string;
let origin: Origin;
const releases: Record<string, Record<string, Uint8Array>> = {};
const children: ChildProcess[] = [];

beforeAll(async () => {
  key = await makeKey();
  work = await mkdtemp(join(tmpdir(), "kindling-hostile-parts-"));
  await writeFile(join(work, "key.asc"), key.armoredPublic);
  origin = await new Origin().start();
  for (const v of ["4800.0.0", "4801.0.0", "4802.0.0", "4803.0.0"]) {
    releases[v] = await buildRelease(key, v, SIZES);
    origin.addRelease("stable", "amd64-usr", v, releases[v]!);
  }
  origin.setCurrent("stable", "amd64-usr", "4800.0.0");
});
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await origin.close();
  await rm(work, { recursive: true, force: true });
});

const originUrl = () => `${origin.url}/{channel}/{board}`;
const releaseDir = (assets: string, v: string) => join(assets, "flatcar", "stable", "amd64-usr", v);
const temporaries = (dir: string) => readdirSync(dir).filter((f) => /\.(part|tmp)$/.test(f));

/** test/flatcar/sync-child.ts: another process syncing `version` into the mirror under `assets`. */
function syncChild(assets: string, version: string) {
  // Node itself with tsx as a loader (not the tsx wrapper, which runs a second process a SIGKILL would miss).
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      join(ROOT, "test/flatcar/sync-child.ts"),
      assets,
      originUrl(),
      join(work, "key.asc"),
      key.fingerprint,
      version,
    ],
    { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
  );
  children.push(child);
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  return { child, exited, output: () => out };
}

/** Waits (bounded) for a `.part` with bytes in `dir`; returns its name and size. */
async function partWithBytes(dir: string, ms = 20_000): Promise<{ name: string; size: number }> {
  const deadline = Date.now() + ms;
  for (;;) {
    const name = existsSync(dir) ? readdirSync(dir).find((f) => f.endsWith(".part")) : undefined;
    if (name) {
      const size = statSync(join(dir, name), { throwIfNoEntry: false })?.size ?? 0;
      if (size > 0) return { name, size };
    }
    if (Date.now() > deadline) throw new Error(`no .part with bytes in ${dir} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Starts a sync in a child process and SIGKILLs it mid-download; returns the `.part` it left. */
async function killedSync(assets: string, version: string) {
  // Slow enough that the kill lands before the file completes even when the test process is starved for a
  // while (two cores shared with the rest of the suite); the pace the caller set comes back after.
  const pace = origin.pace;
  origin.pace = Math.max(pace, 100);
  const sync = syncChild(assets, version);
  const dir = releaseDir(assets, version);
  await partWithBytes(dir);
  sync.child.kill("SIGKILL");
  await sync.exited;
  origin.pace = pace;
  const name = readdirSync(dir).find((f) => f.endsWith(".part"))!;
  expect(name).toContain(`.${sync.child.pid}.part`);
  // Everything the killed process was writing: the .part, its filling mark, and any file it had in flight
  // beside it (a signature being fetched), which depends on where the kill landed.
  const leftovers = readdirSync(dir)
    .filter((f) => f.includes(`.${sync.child.pid}.`))
    .map((f) => join(dir, f));
  return { dir, name, size: statSync(join(dir, name)).size, pid: sync.child.pid!, leftovers };
}

const kindling = (dataDir: string, ...args: string[]) =>
  run(process.execPath, [BIN, "--data-dir", dataDir, ...args], { timeout: 60_000 });

describe("a killed assets sync", () => {
  it("leaves a .part that /assets never serves, which the next sync (beside a running serve) resumes", async () => {
    origin.pace = 25;
    const dataDir = await mkdtemp(join(work, "data-"));
    const assets = assetsDir(dataDir);
    const v = "4801.0.0";
    const left = await killedSync(assets, v);
    const file = left.name.replace(/\.\d+\.part$/, "");

    const k = await startTestKindling({}, dataDir);
    try {
      const base = `${k.url}/assets/flatcar/stable/amd64-usr/${v}`;
      for (const path of [`${base}/${left.name}`, `${k.url}/assets/flatcar/.writers/${left.pid}.lock`]) {
        for (const method of ["GET", "HEAD"])
          expect([path, (await fetch(path, { method })).status]).toEqual([path, 404]);
      }

      // `kindling assets sync` as its own process, on the data dir the server holds.
      origin.pace = 0;
      origin.ranges.length = 0;
      const sync = await kindling(
        dataDir,
        "assets",
        "sync",
        "--channel",
        "stable",
        "--version",
        v,
        "--origin",
        originUrl(),
        "--signing-key",
        join(work, "key.asc"),
        "--signing-fingerprint",
        key.fingerprint,
      );
      expect(sync.stdout).toContain(`verified Flatcar stable amd64-usr ${v}`);
      // Resumed where the killed process stopped, not fetched again from byte 0.
      expect(origin.ranges).toContainEqual({ path: `/stable/amd64-usr/${v}/${file}`, range: `bytes=${left.size}-` });
      for (const f of FILES) expect(Buffer.compare(readFileSync(join(left.dir, f)), releases[v]![f]!)).toBe(0);
      expect(temporaries(left.dir)).toEqual([]);
      expect(existsSync(join(assets, "flatcar", ".writers", `${left.pid}.lock`))).toBe(false);
      // The running server serves what the other process verified.
      const served = await fetch(`${base}/${IMAGE}`);
      expect(served.status).toBe(200);
      expect(Buffer.compare(new Uint8Array(await served.arrayBuffer()), releases[v]![IMAGE]!)).toBe(0);
    } finally {
      await k.stop({ keepData: true });
    }
  }, 90_000);

  it("`assets prune` removes what killed syncs left and leaves a running sync alone", async () => {
    origin.pace = 0;
    const dataDir = await mkdtemp(join(work, "data-"));
    const assets = assetsDir(dataDir);
    const config = FlatcarConfigSchema.parse({
      origin: originUrl(),
      signingKey: join(work, "key.asc"),
      signingFingerprint: key.fingerprint,
    });
    const mirror = new Mirror({ root: assets, config, events: new CollectingSink(), log: silentLogger });
    await mirror.sync({ channel: "stable", version: "current" });

    origin.pace = 25;
    const pinned = await killedSync(assets, "4802.0.0");
    const abandoned = await killedSync(assets, "4803.0.0");
    // A third sync, slow enough to still be running while prune runs.
    origin.pace = 80;
    const live = syncChild(assets, "4801.0.0");
    await partWithBytes(releaseDir(assets, "4801.0.0"));

    // A profile pins 4802.0.0: prune keeps that release, but not the partial file a killed sync left in it.
    const store = Store.open(dataDir);
    store.profiles.put(
      ProfileCreateSchema.parse({ name: "pinned", flatcar: { channel: "stable", version: "4802.0.0", arch: "amd64" } }),
    );
    store.close();

    const prune = await kindling(dataDir, "--json", "assets", "prune");
    const pruned = JSON.parse(prune.stdout) as { removed: { version: string }[]; strays: string[] };
    // The abandoned, unpinned release goes; the one another process is still filling stays, untouched.
    expect(pruned.removed.map((r) => r.version)).toEqual(["4803.0.0"]);
    expect(existsSync(abandoned.dir)).toBe(false);
    expect(existsSync(releaseDir(assets, "4801.0.0"))).toBe(true);
    // The .part, the mark saying the killed process was filling that directory, and whatever else it had in flight.
    expect(pinned.leftovers).toEqual(
      expect.arrayContaining([join(pinned.dir, pinned.name), join(pinned.dir, `.filling-1.${pinned.pid}.tmp`)]),
    );
    expect(pruned.strays.sort()).toEqual(pinned.leftovers.sort());
    expect(existsSync(pinned.dir)).toBe(true);
    expect(temporaries(pinned.dir)).toEqual([]);

    origin.pace = 0;
    expect(await live.exited).toBe(0);
    expect(JSON.parse(live.output())).toEqual({ version: "4801.0.0" });
    expect(existsSync(join(releaseDir(assets, "4801.0.0"), MANIFEST))).toBe(true);
  }, 120_000);
});
