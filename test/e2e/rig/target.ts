import { renameSync } from "node:fs";
import { join } from "node:path";
import { unpackedDeb } from "./debs.ts";
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
/** The same for the arm64 target: the `virt` machine's console is a PL011. */
export const ARM64_TARGET_ARGS = ["console=ttyAMA0", "panic=1"];

const CACHE = join(REPO, "test-artifacts", "cache");
const built = new Map<string, BootTarget>();

/** Built under a private name and renamed: a bench and a test run may build at the same time. */
function initramfs(name: string, build: (tmp: string) => void): string {
  const initrd = join(CACHE, name);
  const tmp = `${initrd}.${process.pid}.tmp`;
  build(tmp);
  renameSync(tmp, initrd);
  return initrd;
}

/** Debian's amd64 kernel (cached across runs) and a freshly built initramfs from the host's busybox (once per process). */
export function bootTarget(): BootTarget {
  const hit = built.get("amd64");
  if (hit) return hit;
  const kernel = ensureKernel(CACHE);
  const initrd = initramfs("initrd.gz", (tmp) => buildInitramfs(kernel, tmp));
  const target = { vmlinuz: kernel.vmlinuz, initrd, kernelVersion: kernel.version };
  built.set("amd64", target);
  return target;
}

/** Debian's arm64 kernel and an initramfs of arm64 busybox-static, both fetched with apt-get download, never installed. */
export function arm64BootTarget(): BootTarget {
  const hit = built.get("arm64");
  if (hit) return hit;
  const kernel = ensureKernel(CACHE, "arm64");
  const busybox = join(unpackedDeb(CACHE, "busybox-static:arm64", "busybox-arm64"), "bin", "busybox");
  const initrd = initramfs("initrd-arm64.gz", (tmp) =>
    buildInitramfs(kernel, tmp, { staticBusybox: busybox, nicModules: ["virtio_pci", "virtio_net"] }),
  );
  const target = { vmlinuz: kernel.vmlinuz, initrd, kernelVersion: kernel.version };
  built.set("arm64", target);
  return target;
}

/** Debian's signed arm64 netboot GRUB (`grub-efi-arm64-signed`), which amd64 hosts cannot install. */
export function arm64Grub(): string {
  const root = unpackedDeb(CACHE, "grub-efi-arm64-signed:arm64", "grub-arm64-signed");
  return join(root, "usr", "lib", "grub", "arm64-efi-signed", "grubnetaa64.efi.signed");
}
