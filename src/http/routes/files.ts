import { Hono, type Context } from "hono";
import type { Logger } from "../../log.ts";
import { resolveInRoots, sendFile } from "../files.ts";

/**
 * Static trees: `/assets/*` (the Flatcar mirror and anything the operator puts there) and `/ipxe-bin/*` (the
 * iPXE binaries, for UEFI HTTP Boot, which cannot use TFTP). No directory listings, no path outside a root.
 */
export function fileRoutes(prefix: string, roots: () => readonly string[], log: Logger): Hono {
  const app = new Hono();
  const handler = (c: Context) => {
    // The raw request line, not the WHATWG-normalised URL: `..` must be seen (and refused), not resolved away.
    const incoming = (c.env as { incoming?: { url?: string } } | undefined)?.incoming;
    const pathname = (incoming?.url ?? new URL(c.req.url).pathname).split("?")[0]!;
    if (!pathname.startsWith(prefix + "/")) return c.text("refused: path leaves the served tree\n", 400);
    const rel = pathname.slice(prefix.length + 1);
    const r = resolveInRoots(roots(), rel);
    if (!r.ok) {
      if (r.status !== 404) log.warn({ path: pathname, reason: r.reason }, "refused file request");
      return c.text(`${r.status === 404 ? "not found" : "refused"}: ${r.reason}\n`, r.status);
    }
    return sendFile(c, r.file, r.stat);
  };
  app.on(["GET", "HEAD"], `${prefix}/*`, handler);
  return app;
}
