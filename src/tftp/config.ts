import { z } from "zod";

/** `tftp:` section of the Kindling config. Port 0 disables the listener. */
export const TftpConfigSchema = z
  .strictObject({
    host: z.string().default("0.0.0.0"),
    port: z.coerce.number().int().min(0).max(65535).default(69),
    /** Directories files are served from, searched in order. Empty → `ipxe/bin` of the project if it exists, else Debian's /usr/lib/ipxe staged into <dataDir>/ipxe-bin. */
    roots: z.array(z.string()).default([]),
    /** Upper bound for a negotiated blksize; 1468 keeps a block within a 1500-byte MTU. */
    maxBlksize: z.coerce.number().int().min(8).max(65464).default(1468),
    /** Upper bound for a negotiated RFC 7440 windowsize; memory per transfer grows with window × blksize. */
    maxWindowsize: z.coerce.number().int().min(1).max(1024).default(64),
    /** Retransmission timeout when the client asks for none (RFC 2349 `timeout` overrides it). */
    timeoutMs: z.coerce.number().int().min(10).max(255_000).default(1000),
    /** Largest RFC 2349 `timeout` a client is granted; a larger ask is left out of the OACK and `timeoutMs` applies. */
    maxTimeoutMs: z.coerce.number().int().min(1000).max(255_000).default(5000),
    /** A transfer the client has not moved forward for this long ends, whatever its timeout and retries would allow. */
    maxIdleMs: z.coerce.number().int().min(100).default(20_000),
    /** Retransmissions of one window (or OACK) before the transfer is given up. */
    retries: z.coerce.number().int().min(1).max(50).default(5),
    /** Files up to this size are read once and shared by every transfer; larger ones stream from disk. */
    cacheMaxFileBytes: z.coerce
      .number()
      .int()
      .min(0)
      .default(16 * 1024 * 1024),
    /** Total size of the shared file cache; least recently used files are dropped first. */
    cacheMaxBytes: z.coerce
      .number()
      .int()
      .min(0)
      .default(128 * 1024 * 1024),
    /** Requests beyond this many running transfers are dropped (the client retries), bounding sockets and fds. */
    maxTransfers: z.coerce.number().int().min(1).default(2000),
    /**
     * Transfers one client IP may run at once; a PXE ROM needs two (its tsize probe and the transfer). Well
     * below maxTransfers, so no one host can fill the server.
     */
    maxTransfersPerClient: z.coerce.number().int().min(1).default(8),
  })
  // A transfer ended by maxIdleMs before its first retransmission would never recover a lost packet.
  .refine((c) => c.maxIdleMs >= Math.max(c.timeoutMs, c.maxTimeoutMs), {
    path: ["maxIdleMs"],
    message: "must be at least timeoutMs and maxTimeoutMs, or no retransmission would ever be sent",
  });
export type TftpConfig = z.infer<typeof TftpConfigSchema>;
