import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { FlatcarConfigSchema } from "../../src/flatcar/config.ts";
import { MANIFEST } from "../../src/flatcar/layout.ts";
import { Mirror } from "../../src/flatcar/mirror.ts";
import { IMAGE, KERNEL_SIG_FALLBACK, PXE_INITRD, PXE_KERNEL } from "../../src/flatcar/release.ts";
import { silentLogger } from "../../src/log.ts";
import { buildRelease, CollectingSink, makeKey, Origin, rotate, type TestKey } from "./fixture.ts";

const V = "4593.1.0";
let key: TestKey;
let release: Record<string, Uint8Array>;
let work: string;

beforeAll(async () => {
  key = await makeKey();
  release = await buildRelease(key, V);
  work = await mkdtemp(join(tmpdir(), "kindling-flatcar-"));
  await writeFile(join(work, "key.asc"), key.armoredPublic);
});
afterAll(() => rm(work, { recursive: true, force: true }));

const origins: Origin[] = [];
afterEach(async () => {
  await Promise.all(origins.splice(0).map((o) => o.close()));
});

async function origin(files = release, channel = "stable"): Promise<Origin> {
  const o = await new Origin().start();
  origins.push(o);
  o.addRelease(channel, "amd64-usr", V, files);
  o.setCurrent(channel, "amd64-usr", V);
  return o;
}

let n = 0;
function mirror(o: Origin, extra: Record<string, unknown> = {}) {
  const root = join(work, `assets-${++n}`);
  const events = new CollectingSink();
  const config = FlatcarConfigSchema.parse({
    origin: `${o.url}/{channel}/{board}`,
    signingKey: join(work, "key.asc"),
    signingFingerprint: key.fingerprint,
    ...extra,
  });
  return { root, events, m: new Mirror({ root, config, events, log: silentLogger }) };
}

const rel = (root: string, ...p: string[]) => join(root, "flatcar", "stable", "amd64-usr", ...p);

describe("Mirror.sync", () => {
  it("resolves current through a 302, verifies every file and lays out the upstream tree", async () => {
    const o = await origin();
    const { m, root, events } = mirror(o);
    const progress: string[] = [];
    await expect(
      m.sync({ channel: "stable", version: "current" }, { onProgress: (p) => progress.push(p.file) }),
    ).resolves.toEqual({ version: V });

    expect(o.count("/stable/amd64-usr/current/version.txt")).toBe(1);
    for (const f of [PXE_KERNEL, PXE_INITRD, IMAGE]) {
      expect(Buffer.compare(readFileSync(rel(root, V, f)), release[f]!)).toBe(0);
      expect(existsSync(rel(root, V, `${f}.sig`))).toBe(true);
    }
    // The PXE kernel had only the fallback signature upstream; the mirror serves it under both names' first.
    expect(Buffer.compare(readFileSync(rel(root, V, `${PXE_KERNEL}.sig`)), release[KERNEL_SIG_FALLBACK]!)).toBe(0);
    expect(readFileSync(rel(root, "current", "version.txt"), "utf8")).toContain(`FLATCAR_VERSION=${V}`);
    expect(readdirSync(rel(root, V)).filter((f) => f.endsWith(".part"))).toEqual([]);
    expect(new Set(progress)).toEqual(new Set([PXE_KERNEL, PXE_INITRD, IMAGE]));
    expect(events.kinds()).toEqual(["flatcar.sync.started", "flatcar.sync.done"]);
    expect(events.events[1]!.detail).toMatchObject({ version: V, bytes: 190_000 });

    expect(m.ensure({ channel: "stable", version: "current", arch: "amd64" })).toEqual({
      state: "ready",
      version: V,
      basePath: "/assets/flatcar/stable/amd64-usr",
    });
    const status = await m.list();
    expect(status.releases).toMatchObject([
      { channel: "stable", board: "amd64-usr", version: V, current: true, bytes: 190_000 },
    ]);
    expect(status.releases[0]!.files.map((f) => f.signedBy)).toEqual(
      Array(3).fill(expect.stringMatching(/^[0-9A-F]{16}$/)),
    );
  });

  it("follows an LTS stream's own current pointer on the lts channel", async () => {
    const o = await origin(release, "lts");
    o.setCurrent("lts", "amd64-usr", V, "current-2024");
    o.tree.delete("/lts/amd64-usr/current/version.txt");
    const { m, root } = mirror(o);
    await expect(m.sync({ channel: "lts-2024", version: "current" })).resolves.toEqual({ version: V });
    expect(existsSync(join(root, "flatcar", "lts-2024", "amd64-usr", "current", "version.txt"))).toBe(true);
    expect(m.ensure({ channel: "lts-2024", version: V, arch: "amd64" })).toMatchObject({
      state: "ready",
      basePath: "/assets/flatcar/lts-2024/amd64-usr",
    });
  });

  it("rejects a tampered kernel, leaves no file behind, records the failure", async () => {
    const bad = Buffer.from(release[PXE_KERNEL]!);
    bad[1000] = bad[1000]! ^ 0xff;
    const o = await origin({ ...release, [PXE_KERNEL]: bad });
    const { m, root, events } = mirror(o);
    await expect(m.sync({ channel: "stable", version: V })).rejects.toThrow(
      /flatcar_production_pxe\.vmlinuz: bad signature/,
    );
    expect(readdirSync(rel(root, V))).toEqual([]);
    expect(existsSync(rel(root, "current"))).toBe(false);
    expect(events.kinds()).toEqual(["flatcar.sync.started", "flatcar.sync.failed"]);
    expect(m.ensure({ channel: "stable", version: V, arch: "amd64" })).toMatchObject({
      state: "failed",
      reason: expect.stringMatching(/bad signature/),
    });
  });

  it("rejects a file whose signature is missing, naming it", async () => {
    const { [`${IMAGE}.sig`]: _dropped, ...rest } = release;
    const o = await origin(rest);
    const { m, root } = mirror(o);
    await expect(m.sync({ channel: "stable", version: V })).rejects.toThrow(/flatcar_production_image\.bin\.bz2\.sig/);
    expect(existsSync(rel(root, V, IMAGE))).toBe(false);
    expect(existsSync(rel(root, V, MANIFEST))).toBe(false);
    expect(o.count(`/stable/amd64-usr/${V}/${IMAGE}`)).toBe(0);
  });

  it("names a file the release lacks", async () => {
    const { [PXE_INITRD]: _dropped, ...rest } = release;
    const o = await origin(rest);
    const { m } = mirror(o);
    await expect(m.sync({ channel: "stable", version: V })).rejects.toThrow(
      new RegExp(`not found at origin: .*/${V}/flatcar_production_pxe_image\\.cpio\\.gz$`),
    );
  });

  it("rejects a signature by another key after exactly one key refresh", async () => {
    const other = await makeKey("Mallory");
    const forged = await buildRelease(other, V);
    const o = await origin(forged);
    o.tree.set("/key.asc", Buffer.from(key.armoredPublic));
    const { m, root } = mirror(o, { signingKey: undefined, signingKeyUrl: `${o.url}/key.asc` });
    await expect(m.sync({ channel: "stable", version: V })).rejects.toThrow(/not a subkey of the pinned signing key/);
    expect(o.count("/key.asc")).toBe(2);
    expect(readdirSync(rel(root, V))).toEqual([]);
  });

  it("refuses a key whose primary fingerprint is not the pinned one", async () => {
    const o = await origin();
    const { m } = mirror(o, { signingFingerprint: "F88CFEDEFF29A5B4D9523864E25D9AED0593B34A" });
    await expect(m.sync({ channel: "stable", version: V })).rejects.toThrow(
      /expected the pinned F88CFEDEFF29A5B4D9523864E25D9AED0593B34A/,
    );
  });

  it("picks up a rotated signing subkey with one refresh of the key", async () => {
    const rotated = await rotate(key);
    const signedByNewSubkey = await buildRelease(rotated, V);
    const o = await origin(signedByNewSubkey);
    o.tree.set("/key.asc", Buffer.from(key.armoredPublic));
    const { m, root } = mirror(o, { signingKey: undefined, signingKeyUrl: `${o.url}/key.asc` });
    // Load (and cache) last year's key first, then publish the rotated one.
    await m.signingKey.get();
    o.tree.set("/key.asc", Buffer.from(rotated.armoredPublic));
    await expect(m.sync({ channel: "stable", version: V })).resolves.toEqual({ version: V });
    expect(o.count("/key.asc")).toBe(2);
    expect(readFileSync(join(root, "flatcar", "signing-key.asc"), "utf8")).toBe(rotated.privateKey.toPublic().armor());
  });

  it("shares one download per file among 20 concurrent requests", async () => {
    const o = await origin();
    const { m, events } = mirror(o);
    const states = Array.from({ length: 20 }, () => m.ensure({ channel: "stable", version: V, arch: "amd64" }).state);
    expect(new Set(states)).toEqual(new Set(["syncing"]));
    const results = await Promise.all(Array.from({ length: 20 }, () => m.sync({ channel: "stable", version: V })));
    expect(results).toEqual(Array(20).fill({ version: V }));
    for (const f of [PXE_KERNEL, PXE_INITRD, IMAGE]) expect(o.count(`/stable/amd64-usr/${V}/${f}`)).toBe(1);
    expect(events.kinds()).toEqual(["flatcar.sync.started", "flatcar.sync.done"]);
    expect(m.ensure({ channel: "stable", version: V, arch: "amd64" }).state).toBe("ready");
  });

  it("lets another process sync the same release at the same time", async () => {
    const big = await buildRelease(key, "4700.0.0", { kernel: 300_000, initrd: 300_000, image: 3_000_000 });
    const o = await origin();
    o.addRelease("stable", "amd64-usr", "4700.0.0", big);
    o.pace = 25;
    const { m, root } = mirror(o);
    const child = promisify(execFile)(
      "npx",
      [
        "tsx",
        join(import.meta.dirname, "sync-child.ts"),
        root,
        `${o.url}/{channel}/{board}`,
        join(work, "key.asc"),
        key.fingerprint,
        "4700.0.0",
      ],
      { cwd: join(import.meta.dirname, "..", "..") },
    );
    const [mine, theirs] = await Promise.all([m.sync({ channel: "stable", version: "4700.0.0" }), child]);
    expect(mine).toEqual({ version: "4700.0.0" });
    expect(JSON.parse(theirs.stdout)).toEqual({ version: "4700.0.0" });
    for (const f of [PXE_KERNEL, PXE_INITRD, IMAGE])
      expect(Buffer.compare(readFileSync(rel(root, "4700.0.0", f)), big[f]!)).toBe(0);
    expect(readdirSync(rel(root, "4700.0.0")).filter((f) => f.endsWith(".part") || f.endsWith(".tmp"))).toEqual([]);
  }, 30_000);

  it("reports a running sync's progress to anyone who asks, not only its starter", async () => {
    const big = await buildRelease(key, "4701.0.0", { kernel: 200_000, initrd: 200_000, image: 1_000_000 });
    const o = await origin();
    o.addRelease("stable", "amd64-usr", "4701.0.0", big);
    o.pace = 10;
    const { m } = mirror(o);
    const done = m.sync({ channel: "stable", version: "4701.0.0" });
    const deadline = Date.now() + 10_000;
    let seen: { file: string; bytes: number } | undefined;
    while (!seen?.bytes && Date.now() < deadline) {
      seen = m.progress().get("stable/amd64-usr/4701.0.0");
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(seen?.bytes).toBeGreaterThan(0);
    await done;
    expect(m.progress().size).toBe(0);
  }, 30_000);

  it("resumes a cut transfer with Range", async () => {
    const o = await origin();
    const imagePath = `/stable/amd64-usr/${V}/${IMAGE}`;
    o.cutOnce.set(imagePath, 50_000);
    const { m, root } = mirror(o);
    await expect(m.sync({ channel: "stable", version: V })).resolves.toEqual({ version: V });
    expect(o.count(imagePath)).toBe(2);
    expect(o.ranges).toEqual([{ path: imagePath, range: "bytes=50000-" }]);
    expect(Buffer.compare(readFileSync(rel(root, V, IMAGE)), release[IMAGE]!)).toBe(0);
  });

  it("downloads nothing again for a mirrored release; re-verifies what an interrupted sync left", async () => {
    const o = await origin();
    const { m, root } = mirror(o);
    const path = (f: string) => `/stable/amd64-usr/${V}/${f}`;
    await m.sync({ channel: "stable", version: "current" });
    await m.sync({ channel: "stable", version: "current" });
    expect(o.count("/stable/amd64-usr/current/version.txt")).toBe(2);
    for (const f of [PXE_KERNEL, PXE_INITRD, IMAGE]) expect(o.count(path(f))).toBe(1);

    // Interrupted before the manifest, with one file damaged on disk since.
    await rm(rel(root, V, MANIFEST));
    const damaged = readFileSync(rel(root, V, PXE_INITRD));
    damaged[10] = damaged[10]! ^ 1;
    await writeFile(rel(root, V, PXE_INITRD), damaged);
    await m.sync({ channel: "stable", version: V });
    expect([PXE_KERNEL, PXE_INITRD, IMAGE].map((f) => o.count(path(f)))).toEqual([1, 2, 1]);
    expect(Buffer.compare(readFileSync(rel(root, V, PXE_INITRD)), release[PXE_INITRD]!)).toBe(0);
    expect(existsSync(rel(root, V, MANIFEST))).toBe(true);

    // A key that cannot be had fails the sync but never deletes verified files.
    await rm(rel(root, V, MANIFEST));
    const wrongKey = new Mirror({
      root,
      config: FlatcarConfigSchema.parse({
        origin: `${o.url}/{channel}/{board}`,
        signingKey: join(work, "key.asc"),
        signingFingerprint: "F88CFEDEFF29A5B4D9523864E25D9AED0593B34A",
      }),
      events: new CollectingSink(),
      log: silentLogger,
    });
    await expect(wrongKey.sync({ channel: "stable", version: V })).rejects.toThrow(/expected the pinned/);
    for (const f of [PXE_KERNEL, PXE_INITRD, IMAGE]) expect(existsSync(rel(root, V, f))).toBe(true);
  });

  it("drops malformed origin answers with a clear failure instead of crashing", async () => {
    const o = await origin({ ...release, [`${PXE_INITRD}.sig`]: Buffer.from("<html>not a signature</html>") });
    o.tree.set("/stable/amd64-usr/current/version.txt", Buffer.from("<html>moved</html>"));
    const { m, events } = mirror(o);
    await expect(m.sync({ channel: "stable", version: "current" })).rejects.toThrow(
      /version\.txt has no FLATCAR_VERSION/,
    );
    await expect(m.sync({ channel: "stable", version: V })).rejects.toThrow(
      /flatcar_production_pxe_image\.cpio\.gz: signature is not an OpenPGP signature/,
    );
    expect(events.kinds().filter((k) => k === "flatcar.sync.failed")).toHaveLength(2);
    expect(m.ensure({ channel: "edge", version: "current", arch: "amd64" })).toMatchObject({
      state: "failed",
      reason: expect.stringMatching(/invalid release/),
    });
    expect(m.ensure({ channel: "stable", version: "../../etc", arch: "amd64" })).toMatchObject({ state: "failed" });
  });

  it("replaces a release's odd version.txt (unsigned metadata) instead of failing verified files", async () => {
    const o = await origin({ ...release, "version.txt": Buffer.from("<html>oops</html>") });
    const { m, root } = mirror(o);
    await expect(m.sync({ channel: "stable", version: V })).resolves.toEqual({ version: V });
    expect(readFileSync(rel(root, V, "version.txt"), "utf8")).toBe(`FLATCAR_VERSION=${V}\n`);
  });

  it("retries a server error from the origin", async () => {
    const o = await origin();
    o.failOnce.set(`/stable/amd64-usr/${V}/${IMAGE}`, 503);
    o.failOnce.set(`/stable/amd64-usr/${V}/${IMAGE}.sig`, 502);
    const { m } = mirror(o);
    await expect(m.sync({ channel: "stable", version: V })).resolves.toEqual({ version: V });
    expect(o.count(`/stable/amd64-usr/${V}/${IMAGE}`)).toBe(2);
    expect(o.count(`/stable/amd64-usr/${V}/${IMAGE}.sig`)).toBe(2);
  });

  it("verifies from disk when the origin ignores Range and sends the file again from the start", async () => {
    const o = await origin();
    const imagePath = `/stable/amd64-usr/${V}/${IMAGE}`;
    o.cutOnce.set(imagePath, 50_000);
    o.ignoreRange.add(imagePath);
    const { m, root } = mirror(o);
    await expect(m.sync({ channel: "stable", version: V })).resolves.toEqual({ version: V });
    expect(o.count(imagePath)).toBe(2);
    expect(Buffer.compare(readFileSync(rel(root, V, IMAGE)), release[IMAGE]!)).toBe(0);
  });

  it("stops downloading as soon as the signature names a key that is not ours", async () => {
    const forged = await buildRelease(await makeKey("Mallory"), V, { kernel: 2_000_000, initrd: 1000, image: 1000 });
    const o = await origin(forged);
    o.pace = 20;
    const { m } = mirror(o);
    await expect(m.sync({ channel: "stable", version: V })).rejects.toThrow(/not a subkey of the pinned signing key/);
    expect(o.sent.get(`/stable/amd64-usr/${V}/${PXE_KERNEL}`)).toBeLessThan(2_000_000);
    expect(o.count(`/stable/amd64-usr/${V}/${PXE_KERNEL}`)).toBe(1);
  });

  it("gives up after the configured attempts and deletes the partial file", async () => {
    const o = await origin();
    const imagePath = `/stable/amd64-usr/${V}/${IMAGE}`;
    o.cutOnce.set(imagePath, 10_000);
    const { m, root } = mirror(o, { attempts: 1 });
    await expect(m.sync({ channel: "stable", version: V })).rejects.toThrow(/gave up after 1 attempts/);
    expect(readdirSync(rel(root, V)).filter((f) => f.startsWith(IMAGE))).toEqual([]);
  });
});

describe("Mirror.import and prune", () => {
  async function releaseDir(version: string, files?: Record<string, Uint8Array>): Promise<string> {
    const dir = await mkdtemp(join(work, `usb-${version}-`));
    for (const [name, data] of Object.entries(
      files ?? (await buildRelease(key, version, { kernel: 2000, initrd: 2000, image: 4000 })),
    )) {
      await writeFile(join(dir, name), data);
    }
    return dir;
  }

  it("imports hand-copied files with the same verification, without any network", async () => {
    const o = await origin();
    const { m, root, events } = mirror(o);
    const dir = await releaseDir("4600.0.0");
    await expect(m.import(dir, { channel: "stable" })).resolves.toMatchObject({ version: "4600.0.0" });
    expect(o.hits.size).toBe(0);
    expect(readFileSync(rel(root, "current", "version.txt"), "utf8")).toContain("FLATCAR_VERSION=4600.0.0");
    expect(m.ensure({ channel: "stable", version: "current", arch: "amd64" })).toMatchObject({
      state: "ready",
      version: "4600.0.0",
    });
    expect(events.kinds()).toEqual(["flatcar.sync.started", "flatcar.sync.done"]);

    const tampered = await buildRelease(key, "4601.0.0", { kernel: 2000, initrd: 2000, image: 4000 });
    tampered[IMAGE] = Buffer.concat([tampered[IMAGE]!, Buffer.from("x")]);
    await expect(m.import(await releaseDir("4601.0.0", tampered), { channel: "stable" })).rejects.toThrow(
      /flatcar_production_image\.bin\.bz2: bad signature/,
    );
    expect(existsSync(rel(root, "4601.0.0", IMAGE))).toBe(false);
    expect(m.ensure({ channel: "stable", version: "current", arch: "amd64" })).toMatchObject({ version: "4600.0.0" });
  });

  it("prunes to the newest N, keeping current and pinned versions", async () => {
    const o = await origin();
    const { m, root } = mirror(o, { keep: 1 });
    for (const v of ["4000.0.0", "4100.0.0", "4200.0.0", "4300.0.0"])
      await m.import(await releaseDir(v), { channel: "stable" });
    // An incomplete leftover (a sync that died) is cleaned as well.
    await mkdir(rel(root, "4400.0.0"), { recursive: true });
    await writeFile(rel(root, "4400.0.0", `${IMAGE}.part`), "half");
    const { removed } = await m.prune([{ channel: "stable", version: "4000.0.0", arch: "amd64" }]);
    expect(removed.map((r) => r.version).sort()).toEqual(["4100.0.0", "4200.0.0", "4400.0.0"]);
    expect((await m.list()).releases.map((r) => r.version)).toEqual(["4300.0.0", "4000.0.0"]);
    expect(existsSync(rel(root, "4300.0.0", IMAGE))).toBe(true);
  });
});
