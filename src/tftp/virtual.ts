import { GRUB_MACHINE_DIR } from "../boot/render-grub.ts";
import { ASSETS } from "../files/assets.ts";
import { FileCatalog, normaliseName, type Opened } from "./files.ts";

/**
 * Names TFTP answers without a file of that name in its roots, looked at before the roots:
 * - `grub/grub.cfg`: the one config Debian's netboot GRUB asks for, the same for every machine;
 * - `grub/machines/<mac>.cfg`: that machine's config, rendered from its boot plan at each request;
 * - `assets/...`: the assets tree HTTP serves at `/assets/` (Flatcar mirror, raw-boot kernels), so GRUB, which
 *   has no HTTP, loads kernel and initrd under the same names. Same containment rule as every served root.
 */
export interface VirtualFiles {
  /**
   * The file for `name` asked by `client` (an IP), or undefined to look in the roots. Throws FileAccessError like
   * FileCatalog.open.
   */
  open(name: string, client: string): Promise<Opened | undefined>;
}

export interface BootVirtualFilesDeps {
  /** `/grub/grub.cfg`. */
  grubMain: () => string;
  /** A machine's GRUB config by the MAC text GRUB put in the name, for the client at `ip`. */
  grubMachine: (mac: string, ip: string) => string;
  /** Roots of the assets tree (HTTP's `/assets/`). */
  assetsRoots: readonly string[];
}

const ASSETS_PREFIX = `${ASSETS}/`;
const MACHINE_CONFIG = new RegExp(`^${GRUB_MACHINE_DIR}/([^/]+)\\.cfg$`);

export function bootVirtualFiles(d: BootVirtualFilesDeps): VirtualFiles {
  // Kernels and initrds are tens of MB, read by one machine each: streamed from disk, never cached.
  const assets = new FileCatalog(d.assetsRoots, { cacheMaxFileBytes: 0, cacheMaxBytes: 0 });
  const text = (path: string, body: string): Opened => {
    const content = Buffer.from(body, "utf8");
    return { path, size: content.length, content };
  };
  return {
    async open(name, client) {
      const path = normaliseName(name);
      if (path === "grub/grub.cfg") return text(path, d.grubMain());
      const machine = MACHINE_CONFIG.exec(path);
      if (machine) return text(path, d.grubMachine(machine[1]!, client));
      if (path.startsWith(ASSETS_PREFIX)) return assets.open(path.slice(ASSETS_PREFIX.length));
      return undefined;
    },
  };
}
