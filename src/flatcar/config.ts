import { z } from "zod";

/** `flatcar:` section: where releases come from and how they are verified and kept. */
export const FlatcarConfigSchema = z.strictObject({
  /** `{channel}` and `{board}` are substituted. */
  origin: z.string().default("https://{channel}.release.flatcar-linux.net/{board}"),
  signingKey: z.string().optional(),
  signingFingerprint: z.string().default("F88CFEDEFF29A5B4D9523864E25D9AED0593B34A"),
  keep: z.coerce.number().int().min(1).default(3),
});
export type FlatcarConfig = z.infer<typeof FlatcarConfigSchema>;
