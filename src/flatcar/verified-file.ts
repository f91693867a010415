import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "../log.ts";
import { partName, tmpName } from "./partial.ts";
import { type SigningKey, VerificationError } from "./signing-key.ts";

export interface Verified {
  bytes: number;
  signedBy: string;
}

/** Small files (version.txt, the manifest, signatures): a temporary beside `path`, renamed over it. */
export async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await mkdir(join(path, ".."), { recursive: true });
  const tmp = tmpName(path);
  await writeFile(tmp, data);
  await rename(tmp, path);
}

/**
 * The one way a release file reaches its final name: `fill` writes it to this process's `.part` of `dest`
 * (and may verify it on the way, returning the signer; null means verify the whole file now), then the
 * signature is stored beside it and the `.part` renamed to `dest`. If anything fails the `.part` is removed,
 * so `dest` only ever holds bytes whose signature checked out.
 */
export async function placeVerified(
  key: SigningKey,
  dest: string,
  name: string,
  sig: Uint8Array,
  fill: (temp: string) => Promise<{ keyId: string } | null>,
): Promise<Verified> {
  const temp = partName(dest);
  try {
    const { keyId } = (await fill(temp)) ?? (await key.verifyFile(temp, sig, name));
    const { size } = await stat(temp);
    await writeAtomic(`${dest}.sig`, sig);
    await rename(temp, dest);
    return { bytes: size, signedBy: keyId };
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

/**
 * A file left by an earlier sync that stopped before its manifest: checked again against the signature
 * stored beside it (cheaper than downloading again); anything that does not verify is removed.
 */
export async function recheck(key: SigningKey, dest: string, name: string, log: Logger): Promise<Verified | null> {
  const [s, sig] = await Promise.all([stat(dest).catch(() => null), readFile(`${dest}.sig`).catch(() => null)]);
  if (!s || !sig) return null;
  try {
    const { keyId } = await key.verifyFile(dest, new Uint8Array(sig), name);
    return { bytes: s.size, signedBy: keyId };
  } catch (err) {
    // Only bytes that contradict their signature are thrown away; a key that cannot be had is not the file's fault.
    if (!(err instanceof VerificationError && err.kind === "signature")) throw err;
    log.warn({ file: dest, err: err.message }, "mirrored file no longer verifies, fetching it again");
    await rm(dest, { force: true });
    return null;
  }
}
