import { z } from "zod";

export const FLATCAR_SIGNING_KEY_URL =
  "https://www.flatcar.org/security/image-signing-key/Flatcar_Image_Signing_Key.asc";
export const FLATCAR_SIGNING_FINGERPRINT = "F88CFEDEFF29A5B4D9523864E25D9AED0593B34A";

/** `flatcar:` section: where releases come from and how they are verified and kept. */
export const FlatcarConfigSchema = z.strictObject({
  /** Release tree root; `{channel}` and `{board}` are substituted (`lts-2024` fetches from channel `lts`). */
  origin: z.string().default("https://{channel}.release.flatcar-linux.net/{board}"),
  /** Armored image signing key from a file; unset → fetched from `signingKeyUrl`. */
  signingKey: z.string().optional(),
  signingKeyUrl: z.url().default(FLATCAR_SIGNING_KEY_URL),
  /** Primary key fingerprint the signing key must have (spaces allowed, any case). */
  signingFingerprint: z
    .string()
    .transform((s) => s.replace(/\s+/g, "").toUpperCase())
    .pipe(z.string().regex(/^[0-9A-F]{40}$|^[0-9A-F]{64}$/, "must be a 40 or 64 hex digit fingerprint"))
    .default(FLATCAR_SIGNING_FINGERPRINT),
  /** Versions kept per channel and board by `assets prune` (pinned versions are always kept). */
  keep: z.coerce.number().int().min(1).default(3),
  /** OEM images mirrored besides the generic image, e.g. `[vmware_raw]` → flatcar_production_vmware_raw_image.bin.bz2. */
  oems: z.array(z.string().regex(/^[a-z0-9_]+$/, "must be an OEM name such as vmware_raw")).default([]),
  /** Attempts per file; a cut connection resumes with Range where the origin supports it. */
  attempts: z.coerce.number().int().min(1).max(20).default(4),
  /** After a failed sync, /ipxe reports the failure for this long before a new request retries. */
  retryFailedSeconds: z.coerce.number().int().min(0).default(60),
});
export type FlatcarConfig = z.infer<typeof FlatcarConfigSchema>;
