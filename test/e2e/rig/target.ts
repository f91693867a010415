import { renameSync } from "node:fs";
import { join } from "node:path";
import { buildInitramfs } from "./initramfs.ts";
import { ensureKernel } from "./kernel.ts";
import { REPO } from "./paths.ts";

export interface BootTarget {
  vmlinuz: string;
  initrd: string;
  kernelVersion: string;
}

/** Kernel command line both servers give the target: serial console, and exit QEMU if init dies. */
export const TARGET_ARGS = ["console=ttyS0,115200n8", "panic=1"];

let built: BootTarget | undefined;

/** Debian's kernel (cached across runs) and a freshly built initramfs (once per process). */
export function bootTarget(): BootTarget {
  if (built) return built;
  const cache = join(REPO, "test-artifacts", "cache");
  const kernel = ensureKernel(cache);
  const initrd = join(cache, "initrd.gz");
  // Built under a private name and renamed: a bench and a test run may build at the same time.
  const tmp = `${initrd}.${process.pid}.tmp`;
  buildInitramfs(kernel, tmp);
  renameSync(tmp, initrd);
  built = { vmlinuz: kernel.vmlinuz, initrd, kernelVersion: kernel.version };
  return built;
}
