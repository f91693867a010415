import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { dependencyOf, unpackedDeb } from "./debs.ts";

/**
 * The boot target: Debian's generic kernel (amd64: the cloud flavour lacks e1000; arm64 for the AAVMF scenario),
 * fetched as a .deb with apt and unpacked into the cache, never installed on the host.
 */
export interface Kernel {
  version: string;
  vmlinuz: string;
  /** /lib/modules/<version> of the unpacked package. */
  modulesDir: string;
}

export type KernelArch = "amd64" | "arm64";

export function ensureKernel(cacheDir: string, arch: KernelArch = "amd64"): Kernel {
  // `linux-image-<arch>` is a metapackage; the kernel lives in the `linux-image-<abi>-<arch>` it depends on.
  const meta = arch === "amd64" ? "linux-image-amd64" : `linux-image-${arch}:${arch}`;
  const pkg = dependencyOf(meta, new RegExp(`Depends: (linux-image-\\S+-${arch})\\b`));
  const root = unpackedDeb(
    cacheDir,
    arch === "amd64" ? pkg : `${pkg}:${arch}`,
    arch === "amd64" ? "linux" : `linux-${arch}`,
    (tmp) => {
      // The package's postinst would run depmod; busybox's depmod writes the modules.dep read below.
      const version = readdirSync(join(tmp, "lib", "modules"))[0];
      if (!version) throw new Error(`${pkg} holds no /lib/modules`);
      execFileSync("busybox", ["depmod", "-b", tmp, version]);
    },
  );
  const image = readdirSync(join(root, "boot")).find((f) => f.startsWith("vmlinuz-"));
  if (!image) throw new Error(`no vmlinuz in ${root}/boot`);
  const version = image.slice("vmlinuz-".length);
  return { version, vmlinuz: join(root, "boot", image), modulesDir: join(root, "lib", "modules", version) };
}

/**
 * The .ko files (relative to modulesDir) needed to load `names`, dependencies first, read from the
 * package's own modules.dep so the list follows whatever the kernel version needs. A driver built into the
 * kernel (modules.builtin) needs no file.
 */
export function moduleLoadOrder(kernel: Kernel, names: string[]): string[] {
  const deps = new Map<string, string[]>();
  for (const line of readFileSync(join(kernel.modulesDir, "modules.dep"), "utf8").split("\n")) {
    const [mod, rest] = line.split(":");
    if (!mod || rest === undefined) continue;
    deps.set(mod, rest.trim().split(/\s+/).filter(Boolean));
  }
  const base = (path: string) =>
    path
      .slice(path.lastIndexOf("/") + 1)
      .replace(/\.ko(\.\w+)?$/, "")
      .replace(/-/g, "_");
  const builtin = new Set(
    readFileSync(join(kernel.modulesDir, "modules.builtin"), "utf8").split("\n").filter(Boolean).map(base),
  );
  const byName = (name: string) => {
    for (const path of deps.keys()) if (base(path) === name.replace(/-/g, "_")) return path;
    if (builtin.has(name.replace(/-/g, "_"))) return undefined;
    throw new Error(`kernel ${kernel.version} has no module ${name}`);
  };
  const order: string[] = [];
  const visit = (path: string) => {
    if (order.includes(path)) return;
    // modules.dep lists the full transitive closure, deepest last; load them in reverse.
    for (const dep of [...(deps.get(path) ?? [])].reverse()) visit(dep);
    order.push(path);
  };
  for (const name of names) {
    const path = byName(name);
    if (path) visit(path);
  }
  return order;
}
