import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";

function sh(cmd: string, args: string[], cwd?: string): string {
  return execFileSync(cmd, args, { encoding: "utf8", cwd, stdio: ["ignore", "pipe", "pipe"] });
}

/** Runs `f`; on failure refreshes the package lists once (they may name a .deb the archive dropped) and retries. */
function withFreshLists<T>(f: () => T): T {
  try {
    return f();
  } catch {
    sh("apt-get", ["update", "-qq"]);
    return f();
  }
}

/**
 * The package a metapackage (`linux-image-amd64`, `linux-image-arm64:arm64`) depends on, matched by `pattern`
 * (its first group is the package name).
 */
export function dependencyOf(meta: string, pattern: RegExp): string {
  const pkg = withFreshLists(() => {
    const found = pattern.exec(sh("apt-cache", ["depends", meta]))?.[1];
    if (!found) throw new Error(`apt-cache cannot resolve ${meta}`);
    return found;
  });
  return pkg;
}

/**
 * A Debian package unpacked into `<cacheDir>/<dir>` with `apt-get download` + `dpkg-deb -x` (never installed;
 * `name:arch` fetches a foreign architecture's package once `dpkg --add-architecture` knows it). Cached: only a
 * complete unpack counts, under a private name until renamed. Returns the directory.
 */
export function unpackedDeb(cacheDir: string, spec: string, dir: string, after?: (root: string) => void): string {
  mkdirSync(cacheDir, { recursive: true });
  const root = join(cacheDir, dir);
  if (existsSync(root)) return root;
  const name = spec.split(":")[0]!;
  // apt drops privileges to _apt for downloads; a cache dir under a root-owned tree is not writable for it.
  withFreshLists(() => sh("apt-get", ["download", "-o", "APT::Sandbox::User=root", spec], cacheDir));
  const deb = readdirSync(cacheDir).find((f) => f.startsWith(`${name}_`) && f.endsWith(".deb"));
  if (!deb) throw new Error(`apt-get download ${spec} left no .deb in ${cacheDir}`);
  const tmp = `${root}.${process.pid}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  sh("dpkg-deb", ["-x", join(cacheDir, deb), tmp]);
  after?.(tmp);
  renameSync(tmp, root);
  rmSync(join(cacheDir, deb));
  return root;
}
