import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ReleaseSource } from "../../src/boot/releases.ts";
import { assetsDir } from "../../src/files/assets.ts";
import { Mirror } from "../../src/flatcar/mirror.ts";
import { IMAGE, PXE_INITRD, PXE_KERNEL } from "../../src/flatcar/release.ts";
import { silentLogger } from "../../src/log.ts";
import { type Running, startTestKindling } from "../helpers/kindling.ts";
import { buildRelease, makeKey, Origin, type TestKey } from "./fixture.ts";

const V = "4593.2.0";
let key: TestKey;
let release: Record<string, Uint8Array>;
let origin: Origin;
let k: Running;
let work: string;
let mirror: Mirror;

beforeAll(async () => {
  key = await makeKey();
  release = await buildRelease(key, V);
  work = mkdtempSync(join(tmpdir(), "kindling-flatcar-serve-"));
  writeFileSync(join(work, "key.asc"), key.armoredPublic);
  // gpgv wants a binary keyring: the same public key, as flatcar-install's own verification would use.
  writeFileSync(join(work, "keyring.gpg"), key.privateKey.toPublic().write());
  origin = await new Origin().start();
  origin.addRelease("stable", "amd64-usr", V, release);
  origin.setCurrent("stable", "amd64-usr", V);
  k = await startTestKindling({
    flatcar: {
      origin: `${origin.url}/{channel}/{board}`,
      signingKey: join(work, "key.asc"),
      signingFingerprint: key.fingerprint,
    },
  });
  mirror = new Mirror({
    root: assetsDir(k.dataDir),
    config: k.config.flatcar,
    events: k.store.events,
    log: silentLogger,
  });
  await mirror.sync({ channel: "stable", version: "current" });
});

afterAll(async () => {
  await k?.stop();
  await origin?.close();
  rmSync(work, { recursive: true, force: true });
});

// Async: the server answering these runs in this very process.
const run = promisify(execFile);
const curl = async (...args: string[]) =>
  (await run("curl", ["-fsS", "--max-time", "10", ...args], { cwd: work, encoding: "buffer" })).stdout;
// Own GNUPGHOME: no dependence on (or change to) the CI user's ~/.gnupg.
const gpgv = (sig: string, file: string) =>
  run("gpgv", ["--keyring", join(work, "keyring.gpg"), sig, file], {
    cwd: work,
    env: { ...process.env, GNUPGHOME: work },
  });

describe("flatcar-install -b http://<kindling>/assets/flatcar/stable/amd64-usr", () => {
  const base = () => `${k.url}/assets/flatcar/stable/amd64-usr`;

  it("answers <base>/current/version.txt with the resolved release", async () => {
    const txt = (await curl(`${base()}/current/version.txt`)).toString();
    expect(/^FLATCAR_VERSION=(.*)$/m.exec(txt)?.[1]).toBe(V);
  });

  it("answers HEAD and GET of <base>/<version>/flatcar_production_image.bin.bz2 and .sig, which gpgv accepts", async () => {
    const head = (await curl("-I", `${base()}/${V}/${IMAGE}`)).toString();
    expect(head).toMatch(/^HTTP\/1\.1 200/);
    expect(head).toMatch(new RegExp(`content-length: ${release[IMAGE]!.length}\\r?\\n`, "i"));
    await curl("-o", "image.bin.bz2", `${base()}/${V}/${IMAGE}`);
    await curl("-o", "image.bin.bz2.sig", `${base()}/${V}/${IMAGE}.sig`);
    expect(Buffer.compare(readFileSync(join(work, "image.bin.bz2")), release[IMAGE]!)).toBe(0);
    await expect(gpgv("image.bin.bz2.sig", "image.bin.bz2")).resolves.toBeDefined();
  });

  it("serves the PXE kernel (with the signature under its own name) and initrd, Range included", async () => {
    await curl("-o", "vmlinuz", `${base()}/${V}/${PXE_KERNEL}`);
    await curl("-o", "vmlinuz.sig", `${base()}/${V}/${PXE_KERNEL}.sig`);
    await expect(gpgv("vmlinuz.sig", "vmlinuz")).resolves.toBeDefined();
    const part = await curl("-r", "100-199", `${base()}/${V}/${PXE_INITRD}`);
    expect(Buffer.compare(part, Buffer.from(release[PXE_INITRD]!.subarray(100, 200)))).toBe(0);
  });

  it("is the ReleaseSource /ipxe asks, pointing at this tree", () => {
    const source: ReleaseSource = mirror;
    expect(source.ensure({ channel: "stable", version: "current", arch: "amd64" })).toEqual({
      state: "ready",
      version: V,
      basePath: "/assets/flatcar/stable/amd64-usr",
    });
    expect(source.ensure({ channel: "stable", version: V, arch: "amd64" })).toEqual({
      state: "ready",
      version: V,
      basePath: "/assets/flatcar/stable/amd64-usr",
    });
  });

  it("recorded the sync in the event log", async () => {
    const kinds = (await k.store.events.list({})).map((e) => e.kind);
    expect(kinds).toEqual(expect.arrayContaining(["flatcar.sync.started", "flatcar.sync.done"]));
  });
});
