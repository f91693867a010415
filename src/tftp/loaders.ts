import { copyFile, mkdir, stat } from "node:fs/promises";
import { join } from "node:path";

/**
 * Debian's signed boot loaders for the GRUB path, under the names firmware and shim ask for:
 * - `shimx64.efi` (shim-signed; signed by Microsoft's UEFI CA): what Secure Boot firmware can run first;
 * - `grubx64.efi` (grub-efi-amd64-signed's netboot GRUB; signed by Debian): the file shim fetches from the
 *   directory it came from, and runs only if signed by a key shim trusts;
 * - `grubnetaa64.efi` (grub-efi-arm64-signed): the arm64 netboot GRUB, present on arm64 hosts. On other hosts
 *   the operator puts it into the staging directory by hand (see docs/e2e.md).
 */
export const SIGNED_LOADERS: readonly { source: string; name: string }[] = [
  { source: "/usr/lib/shim/shimx64.efi.signed", name: "shimx64.efi" },
  { source: "/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed", name: "grubx64.efi" },
  { source: "/usr/lib/grub/arm64-efi-signed/grubnetaa64.efi.signed", name: "grubnetaa64.efi" },
];

/**
 * Copies the installed signed loaders into `target` (plain files: a served root never follows a link out),
 * skipping unchanged ones, and returns the names staged. Files already in `target` that no package provides
 * are left alone. A missing package is no error: DHCP still names the file and TFTP answers "not found".
 */
export async function stageSignedLoaders(
  target: string,
  loaders: readonly { source: string; name: string }[] = SIGNED_LOADERS,
): Promise<string[]> {
  await mkdir(target, { recursive: true });
  const staged: string[] = [];
  for (const { source, name } of loaders) {
    const from = await stat(source).catch(() => undefined);
    if (!from?.isFile()) continue;
    const to = join(target, name);
    const existing = await stat(to).catch(() => undefined);
    if (!existing || existing.size !== from.size || existing.mtimeMs < from.mtimeMs) await copyFile(source, to);
    staged.push(name);
  }
  return staged;
}
