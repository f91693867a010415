import { z } from "zod";

/** `dhcp:` section of the Kindling config. */
export const DhcpConfigSchema = z.strictObject({
  mode: z.enum(["off", "proxy", "full"]).default("proxy"),
  /** Port 0 disables the listener; 67 in production, something high in tests. */
  port: z.coerce.number().int().min(0).max(65535).default(67),
  /** proxyDHCP boot-server port (PXE spec: 4011). */
  proxyPort: z.coerce.number().int().min(0).max(65535).default(4011),
});
export type DhcpConfig = z.infer<typeof DhcpConfigSchema>;
