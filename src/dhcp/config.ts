import { z } from "zod";
import { inCidr, ipToInt, parseCidr } from "./ip.ts";

const ipv4 = z.ipv4();
const isCidr = (c: string): boolean =>
  /^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(c) &&
  z.ipv4().safeParse(c.split("/")[0]).success &&
  Number(c.split("/")[1]) <= 30;
const cidr = z.string().refine(isCidr, "must be a CIDR like 10.0.0.0/24 (prefix at most /30)");
const seconds = (fallback: number) =>
  z.coerce
    .number()
    .int()
    .min(1)
    .max(365 * 86400)
    .default(fallback);

/** One address range of a subnet, both ends inclusive. */
export const RangeSchema = z.strictObject({ start: ipv4, end: ipv4 });

/** A subnet Kindling leases addresses in (full mode). */
export const SubnetSchema = z
  .strictObject({
    /** Network in CIDR form; served directly on the interface whose address lies in it, or via relays (giaddr). */
    cidr,
    ranges: z.array(RangeSchema).min(1),
    router: ipv4.optional(),
    dns: z.array(ipv4).default([]),
    domain: z.string().optional(),
    leaseSeconds: seconds(3600),
  })
  .superRefine((s, ctx) => {
    // Field errors are already reported; these cross-field checks need a valid network.
    if (!isCidr(s.cidr)) return;
    const net = parseCidr(s.cidr);
    s.ranges.forEach((r, i) => {
      if (!inCidr(net, r.start) || !inCidr(net, r.end))
        ctx.addIssue({
          code: "custom",
          path: ["ranges", i],
          message: `range ${r.start}-${r.end} is not inside ${s.cidr}`,
        });
      else if (ipToInt(r.start) > ipToInt(r.end))
        ctx.addIssue({
          code: "custom",
          path: ["ranges", i],
          message: `range start ${r.start} is after its end ${r.end}`,
        });
    });
    if (s.router && !inCidr(net, s.router))
      ctx.addIssue({ code: "custom", path: ["router"], message: `router ${s.router} is not inside ${s.cidr}` });
  });
export type SubnetConfig = z.infer<typeof SubnetSchema>;

/** `dhcp:` section of the Kindling config. */
export const DhcpConfigSchema = z.strictObject({
  mode: z.enum(["off", "proxy", "full"]).default("proxy"),
  /** Port 0 disables the listener; 67 in production, something high in tests. */
  port: z.coerce.number().int().min(0).max(65535).default(67),
  /** proxyDHCP boot-server port (PXE spec: 4011). */
  proxyPort: z.coerce.number().int().min(0).max(65535).default(4011),
  /** Port replies to unrelayed clients go to (68; tests may move it). */
  clientPort: z.coerce.number().int().min(1).max(65535).default(68),
  /**
   * Interfaces (by name) that serve DHCP. Replies to broadcasts leave through a socket bound to the
   * interface's address, so they never escape onto other links. Empty: the interface holding `advertise`.
   */
  interfaces: z.array(z.string().min(1)).default([]),
  /** Boot file per firmware family; names are TFTP paths (and `/ipxe-bin/<name>` for UEFI HTTP boot). */
  bootFiles: z
    .strictObject({
      bios: z.string().min(1).default("undionly.kpxe"),
      efiIa32: z.string().min(1).default("ipxe.efi"),
      efiX64: z.string().min(1).default("ipxe.efi"),
      efiArm64: z.string().min(1).default("ipxe-arm64.efi"),
    })
    .prefault({}),
  /** User classes (option 77) that mark a client as iPXE, besides iPXE's own `iPXE`. */
  ipxeUserClasses: z.array(z.string().min(1)).default([]),
  /**
   * Proxy mode: give UEFI PXE clients the boot file in the first offer on port 67 instead of waiting for
   * their REQUEST on 4011. Off by default: many UEFI firmwares ignore an offer that skips discovery.
   */
  proxyFullOffer: z.boolean().default(false),
  /** How long an OFFER holds its address for the client's REQUEST. */
  offerSeconds: seconds(30),
  /** How long an address a client DECLINEd stays out of the pool. */
  declineSeconds: seconds(600),
  /**
   * Most addresses of a subnet's ranges quarantined by DECLINE at once, in percent (at least one address);
   * past it the oldest quarantine ends early. A host that leases addresses only to decline them can hold out
   * this share of the pool, no more.
   */
  declineMaxPercent: z.coerce.number().int().min(1).max(100).default(10),
  subnets: z.array(SubnetSchema).default([]),
});
export type DhcpConfig = z.infer<typeof DhcpConfigSchema>;
