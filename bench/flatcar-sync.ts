/**
 * Mirror sync speed beside the peer way of doing the same work: nginx serves a signed release on loopback;
 * Kindling's Mirror downloads and stream-verifies it, and the peer runs curl + gpgv on the same files.
 * Prints medians and the ratio. Run: npx tsx bench/flatcar-sync.ts [imageMiB=128] [rounds=3]
 */
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { FlatcarConfigSchema } from "../src/flatcar/config.ts";
import { Mirror } from "../src/flatcar/mirror.ts";
import { IMAGE, KERNEL_SIG_FALLBACK, PXE_INITRD, PXE_KERNEL } from "../src/flatcar/release.ts";
import { silentLogger } from "../src/log.ts";
import { CollectingSink, detachedSign, makeKey } from "../test/flatcar/fixture.ts";
import { freePort } from "../test/helpers/kindling.ts";

const run = promisify(execFile);
const imageMiB = Number(process.argv[2] ?? 128);
const rounds = Math.max(1, Math.min(9, Number(process.argv[3] ?? 3)));
const V = "4593.2.5";
const work = mkdtempSync(join(tmpdir(), "kindling-bench-flatcar-"));
let nginx: ReturnType<typeof spawn> | undefined;

try {
  const key = await makeKey();
  const dir = join(work, "www", "stable", "amd64-usr", V);
  mkdirSync(dir, { recursive: true });
  const files: Record<string, Buffer> = {
    [PXE_KERNEL]: randomBytes(8 << 20),
    [PXE_INITRD]: randomBytes(32 << 20),
    [IMAGE]: randomBytes(imageMiB << 20),
  };
  for (const [name, data] of Object.entries(files)) {
    writeFileSync(join(dir, name), data);
    writeFileSync(join(dir, name === PXE_KERNEL ? KERNEL_SIG_FALLBACK : `${name}.sig`), await detachedSign(key, data));
  }
  writeFileSync(join(work, "key.asc"), key.armoredPublic);
  writeFileSync(join(work, "keyring.gpg"), key.privateKey.toPublic().write());

  const port = await freePort();
  writeFileSync(
    join(work, "nginx.conf"),
    `daemon off; master_process off; worker_processes 1; pid ${work}/nginx.pid; error_log ${work}/error.log;
events { worker_connections 64; }
http { access_log off; sendfile on; server { listen 127.0.0.1:${port}; root ${work}/www; } }
`,
  );
  nginx = spawn("nginx", ["-p", work, "-c", join(work, "nginx.conf")], { stdio: "ignore" });
  for (let i = 0; i < 50; i++) {
    if (
      await fetch(`http://127.0.0.1:${port}/`).then(
        () => true,
        () => false,
      )
    )
      break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const base = `http://127.0.0.1:${port}/stable/amd64-usr/${V}`;
  const total = Object.values(files).reduce((n, b) => n + b.length, 0);

  const kindling = async (i: number) => {
    const root = join(work, `k${i}`);
    const config = FlatcarConfigSchema.parse({
      origin: `http://127.0.0.1:${port}/{channel}/{board}`,
      signingKey: join(work, "key.asc"),
      signingFingerprint: key.fingerprint,
    });
    const t = performance.now();
    await new Mirror({ root, config, events: new CollectingSink(), log: silentLogger }).sync({
      channel: "stable",
      version: V,
    });
    const ms = performance.now() - t;
    rmSync(root, { recursive: true, force: true });
    return ms;
  };
  const peer = async (i: number) => {
    const out = join(work, `p${i}`);
    mkdirSync(out);
    const t = performance.now();
    for (const name of Object.keys(files)) {
      const sig = name === PXE_KERNEL ? KERNEL_SIG_FALLBACK : `${name}.sig`;
      await run("curl", ["-fsS", "-o", join(out, name), `${base}/${name}`, "-o", join(out, "f.sig"), `${base}/${sig}`]);
      await run("gpgv", ["--keyring", join(work, "keyring.gpg"), join(out, "f.sig"), join(out, name)], {
        env: { ...process.env, GNUPGHOME: work },
      });
    }
    const ms = performance.now() - t;
    rmSync(out, { recursive: true, force: true });
    return ms;
  };

  const k: number[] = [];
  const p: number[] = [];
  for (let i = 0; i < rounds; i++) {
    k.push(await kindling(i));
    p.push(await peer(i));
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const mibs = (ms: number) => (total / (1 << 20) / (ms / 1000)).toFixed(1);
  const km = median(k);
  const pm = median(p);
  console.log(`release of ${(total / (1 << 20)).toFixed(0)} MiB from nginx on loopback, ${rounds} rounds, median:`);
  console.log(`  kindling Mirror.sync (download, verified inline): ${km.toFixed(0)} ms  ${mibs(km)} MiB/s`);
  console.log(`  curl + gpgv:                                      ${pm.toFixed(0)} ms  ${mibs(pm)} MiB/s`);
  console.log(`  ratio kindling/peer time: ${(km / pm).toFixed(2)}`);
} finally {
  nginx?.kill();
  rmSync(work, { recursive: true, force: true });
}
