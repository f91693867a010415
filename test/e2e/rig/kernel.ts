import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";

/**
 * The boot target: Debian's generic amd64 kernel (the cloud flavour lacks e1000), fetched as a .deb
 * with apt and unpacked into the cache, never installed on the host.
 */
export interface Kernel {
  version: string;
  vmlinuz: string;
  /** /lib/modules/<version> of the unpacked package. */
  modulesDir: string;
}

function sh(cmd: string, args: string[], cwd?: string): string {
  return execFileSync(cmd, args, { encoding: "utf8", cwd, stdio: ["ignore", "pipe", "pipe"] });
}

/** `linux-image-amd64` is a metapackage; the kernel lives in the `linux-image-<abi>-amd64` it depends on. */
function kernelPackage(): string {
  const find = () => /Depends: (linux-image-\S+-amd64)/.exec(sh("apt-cache", ["depends", "linux-image-amd64"]))?.[1];
  let pkg: string | undefined;
  try {
    pkg = find();
  } catch {
    pkg = undefined;
  }
  if (!pkg) {
    sh("apt-get", ["update", "-qq"]);
    pkg = find();
  }
  if (!pkg) throw new Error("apt-cache cannot resolve linux-image-amd64 to a kernel package");
  return pkg;
}

export function ensureKernel(cacheDir: string): Kernel {
  mkdirSync(cacheDir, { recursive: true });
  const root = join(cacheDir, "linux");
  if (!existsSync(join(root, "boot"))) {
    const pkg = kernelPackage();
    // apt drops privileges to _apt for downloads; a cache dir under a root-owned tree is not writable for it.
    const download = () => sh("apt-get", ["download", "-o", "APT::Sandbox::User=root", pkg], cacheDir);
    try {
      download();
    } catch {
      // A package list older than the archive names a .deb that is gone: refresh once and retry.
      sh("apt-get", ["update", "-qq"]);
      download();
    }
    const deb = readdirSync(cacheDir).find((f) => f.startsWith(`${pkg}_`) && f.endsWith(".deb"));
    if (!deb) throw new Error(`apt-get download ${pkg} left no .deb in ${cacheDir}`);
    const tmp = `${root}.tmp`;
    rmSync(tmp, { recursive: true, force: true });
    sh("dpkg-deb", ["-x", join(cacheDir, deb), tmp]);
    // The package's postinst would run depmod; busybox's depmod writes the modules.dep we read below.
    const version = readdirSync(join(tmp, "lib", "modules"))[0];
    if (!version) throw new Error(`${deb} holds no /lib/modules`);
    sh("busybox", ["depmod", "-b", tmp, version]);
    renameSync(tmp, root); // only a complete unpack counts as cached
    rmSync(join(cacheDir, deb));
  }
  const image = readdirSync(join(root, "boot")).find((f) => f.startsWith("vmlinuz-"));
  if (!image) throw new Error(`no vmlinuz in ${root}/boot`);
  const version = image.slice("vmlinuz-".length);
  return { version, vmlinuz: join(root, "boot", image), modulesDir: join(root, "lib", "modules", version) };
}

/**
 * The .ko files (relative to modulesDir) needed to load `names`, dependencies first, read from the
 * package's own modules.dep so the list follows whatever the kernel version needs.
 */
export function moduleLoadOrder(kernel: Kernel, names: string[]): string[] {
  const deps = new Map<string, string[]>();
  for (const line of readFileSync(join(kernel.modulesDir, "modules.dep"), "utf8").split("\n")) {
    const [mod, rest] = line.split(":");
    if (!mod || rest === undefined) continue;
    deps.set(mod, rest.trim().split(/\s+/).filter(Boolean));
  }
  const byName = (name: string) => {
    for (const path of deps.keys()) {
      const base = path.slice(path.lastIndexOf("/") + 1).replace(/\.ko(\.\w+)?$/, "");
      if (base.replace(/-/g, "_") === name.replace(/-/g, "_")) return path;
    }
    throw new Error(`kernel ${kernel.version} has no module ${name}`);
  };
  const order: string[] = [];
  const visit = (path: string) => {
    if (order.includes(path)) return;
    // modules.dep lists the full transitive closure, deepest last; load them in reverse.
    for (const dep of [...(deps.get(path) ?? [])].reverse()) visit(dep);
    order.push(path);
  };
  for (const name of names) visit(byName(name));
  return order;
}
