import { type Context, Hono } from "hono";
import type { Logger } from "../../log.ts";
import { resolveInRoots, sendFile } from "../files.ts";
import { clientIp } from "./boot.ts";

/**
 * Static trees: `/assets/*` (the Flatcar mirror and anything the operator puts there) and `/ipxe-bin/*` (the
 * iPXE binaries, for UEFI HTTP Boot, which cannot use TFTP). No directory listings, no path outside a root.
 */
/** A file answered with its bytes (status 200 or 206). */
export interface Served {
  path: string;
  ip: string | undefined;
  method: string;
  bytes: number;
  /** A Range request (a resumed or split download), not the first fetch of the file. */
  partial: boolean;
}

export function fileRoutes(
  prefix: string,
  roots: () => readonly string[],
  log: Logger,
  onServed: (s: Served) => void,
): Hono {
  const app = new Hono();
  const handler = async (c: Context) => {
    // The raw request line, not the WHATWG-normalised URL: `..` must be seen (and refused), not resolved away.
    const incoming = (c.env as { incoming?: { url?: string } } | undefined)?.incoming;
    const pathname = (incoming?.url ?? new URL(c.req.url).pathname).split("?")[0]!;
    if (!pathname.startsWith(`${prefix}/`)) return c.text("refused: path leaves the served tree\n", 400);
    const rel = pathname.slice(prefix.length + 1);
    const r = await resolveInRoots(roots(), rel);
    if (!r.ok) {
      if (r.status !== 404) log.warn({ path: pathname, reason: r.reason }, "refused file request");
      return c.text(`${r.status === 404 ? "not found" : "refused"}: ${r.reason}\n`, r.status);
    }
    const { status, response } = await sendFile(c, r.file, r.stat);
    if (status === 200 || status === 206)
      onServed({
        path: pathname,
        ip: clientIp(c),
        method: c.req.method,
        bytes: r.stat.size,
        partial: status === 206,
      });
    return response;
  };
  app.on(["GET", "HEAD"], `${prefix}/*`, handler);
  return app;
}
