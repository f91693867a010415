import { z } from "zod";

export const BMC_DRIVERS = ["ipmi", "redfish"] as const;
export const BmcDriverSchema = z.enum(BMC_DRIVERS);
export type BmcDriver = z.infer<typeof BmcDriverSchema>;

/** What an operator may ask of a BMC; `pxe-once` sets the next boot (only) to the network. */
export const POWER_ACTIONS = ["status", "on", "off", "soft-off", "cycle", "reset", "pxe-once"] as const;
export const PowerActionSchema = z.enum(POWER_ACTIONS);
export type PowerAction = z.infer<typeof PowerActionSchema>;

export const PowerStateSchema = z.enum(["on", "off", "unknown"]);
export type PowerState = z.infer<typeof PowerStateSchema>;

/** A BMC host: an IPv4/IPv6 literal or a DNS name, never a URL or anything ipmitool could read as a flag. */
const AddressSchema = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[A-Za-z0-9][A-Za-z0-9.:-]*$/, "not a host name or IP address");

/** Body of PUT /api/v1/machines/:mac/bmc. The password is write-only: no answer ever carries it. */
export const BmcInputSchema = z.strictObject({
  driver: BmcDriverSchema,
  address: AddressSchema,
  /** Default: 623 (IPMI, UDP) or 443 (Redfish, HTTPS). */
  port: z.number().int().min(1).max(65535).optional(),
  username: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[^\0\n]*$/, "must not contain NUL or line breaks"),
  password: z
    .string()
    .min(1)
    .max(256)
    .regex(/^[^\0\n]*$/, "must not contain NUL or line breaks"),
  /**
   * IPMI: the RMCP+ cipher suite (ipmitool -C). Unset, ipmitool asks the BMC which it supports; BMCs that do
   * not answer that question (OpenIPMI's simulator among them) cost the whole timeout, so name it (3 or 17).
   */
  cipherSuite: z.number().int().min(0).max(17).optional(),
  /** Redfish: the ComputerSystem's id under /redfish/v1/Systems; default: the only member. */
  systemId: z
    .string()
    .max(128)
    .regex(/^[A-Za-z0-9._-]+$/, "letters, digits, . _ -")
    .optional(),
  /** Redfish: `session` (SessionService, the default) or `basic` (HTTP Basic on every request). */
  auth: z.enum(["session", "basic"]).optional(),
  /** Redfish: a PEM CA bundle that signed this BMC's certificate (self-signed BMCs: the certificate itself). */
  caCert: z
    .string()
    .max(65_536)
    .includes("-----BEGIN CERTIFICATE-----", { message: "not a PEM certificate" })
    .optional(),
  /** Redfish: accept any certificate. Off by default; a BMC's self-signed certificate is better pinned with caCert. */
  insecure: z.boolean().optional(),
});
export type BmcInput = z.infer<typeof BmcInputSchema>;

/** A BMC as stored and used: the password decrypted only for the call that needs it. */
export interface BmcRecord extends Omit<BmcInput, "password" | "port"> {
  mac: string;
  port: number;
  power: { state: PowerState; checkedAt: string | null; error: string | null };
  createdAt: string;
  updatedAt: string;
}

/** What the API answers for a machine's BMC: everything but the password, which is only said to be set. */
export const BmcViewSchema = z
  .object({
    mac: z.string(),
    driver: BmcDriverSchema,
    address: z.string(),
    port: z.number().int(),
    username: z.string(),
    password: z.literal("set"),
    cipherSuite: z.number().int().optional(),
    systemId: z.string().optional(),
    auth: z.enum(["session", "basic"]).optional(),
    caCert: z.string().optional(),
    insecure: z.boolean().optional(),
    power: z.object({ state: PowerStateSchema, checkedAt: z.string().nullable(), error: z.string().nullable() }),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .meta({ id: "Bmc" });
export type BmcView = z.infer<typeof BmcViewSchema>;

export const defaultPort = (driver: BmcDriver): number => (driver === "ipmi" ? 623 : 443);

export const viewOf = (b: BmcRecord): BmcView => ({ ...b, password: "set" });

/** The firmware kind the next-boot override must name: the recorded arch/loader says whether it boots UEFI. */
export type BootMode = "uefi" | "legacy";
