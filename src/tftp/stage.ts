import { copyFile, mkdir, readdir, realpath, stat } from "node:fs/promises";
import { join } from "node:path";

/** What firmware chainloads: BIOS (.kpxe, .pxe), UEFI (.efi) and the iPXE kernel image (.lkrn). */
const BOOT_BINARY = /\.(kpxe|pxe|efi|lkrn)$/;

/**
 * Copies a distribution's iPXE binaries into `target`, resolving its symlinks once (Debian's
 * /usr/lib/ipxe/ipxe.efi is a link to /boot/ipxe.efi). Kindling then serves a tree of plain files and keeps
 * refusing every link that leaves a served root. Unchanged files are not copied again.
 */
export async function stageIpxeBinaries(source: string, target: string): Promise<string[]> {
  await mkdir(target, { recursive: true });
  let names: string[];
  try {
    names = (await readdir(source)).filter((n) => BOOT_BINARY.test(n)).sort();
  } catch {
    return []; // no iPXE package installed: TFTP answers "file not found" and says what to install
  }
  const staged: string[] = [];
  for (const name of names) {
    let real: string;
    try {
      real = await realpath(join(source, name));
    } catch {
      continue; // a dangling link in the package dir
    }
    const from = await stat(real);
    if (!from.isFile()) continue;
    const to = join(target, name);
    const existing = await stat(to).catch(() => undefined);
    if (!existing || existing.size !== from.size || existing.mtimeMs < from.mtimeMs) await copyFile(real, to);
    staged.push(name);
  }
  return staged;
}
