import { z } from "zod";

const base64Key = z.string().regex(/^[A-Za-z0-9+/]{43}=$/, "a 32-byte key in base64 (openssl rand -base64 32)");

/** `power:` in the config file. The keys come from the file or the environment only, never from flags (`ps`). */
export const PowerConfigSchema = z
  .strictObject({
    /** Hard bound on one BMC call (ipmitool run, Redfish request chain). */
    timeoutSeconds: z.coerce.number().int().min(1).max(300).default(20),
    /** Power-state poller: every `pollSeconds`, the `pollBatch` BMCs asked longest ago. 0 turns polling off. */
    pollSeconds: z.coerce.number().int().min(0).max(86_400).default(60),
    pollBatch: z.coerce.number().int().min(1).max(1000).default(10),
    /** Calls that may wait behind the running one, per BMC (one runs at a time). */
    queuePerBmc: z.coerce.number().int().min(1).max(100).default(4),
    /** BMC calls running at once across all BMCs. */
    maxConcurrent: z.coerce.number().int().min(1).max(256).default(16),
    ipmitool: z.string().default("ipmitool"),
    /** AES-256 key for BMC passwords (env KINDLING_BMC_KEY); unset: <dataDir>/bmc-keys, generated when absent. */
    key: base64Key.optional(),
    /** Older keys still readable (env KINDLING_BMC_OLD_KEYS, comma-separated). */
    oldKeys: z
      .string()
      .regex(/^([A-Za-z0-9+/]{43}=)(,[A-Za-z0-9+/]{43}=)*$/, "comma-separated 32-byte base64 keys")
      .optional(),
  })
  .prefault({});
export type PowerConfig = z.infer<typeof PowerConfigSchema>;

/** Environment variables that carry BMC keys, and where they go in the config. */
export const POWER_KEY_ENV = [
  ["KINDLING_BMC_KEY", "key"],
  ["KINDLING_BMC_OLD_KEYS", "oldKeys"],
] as const;
