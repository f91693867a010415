import type { Stats } from "node:fs";
import { stat as fsStat, open } from "node:fs/promises";
import { extname } from "node:path";
import type { HttpBindings } from "@hono/node-server";
import { RESPONSE_ALREADY_SENT } from "@hono/node-server/utils/response";
import type { Context } from "hono";
import { findInRoots } from "../files/roots.ts";
import { pumpFile } from "./file-pump.ts";

const CONTENT_TYPES: Record<string, string> = {
  ".ipxe": "text/plain; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
  ".sig": "application/pgp-signature",
  ".asc": "application/pgp-keys",
  ".json": "application/json",
  ".ign": "application/json",
  ".gz": "application/gzip",
  ".bz2": "application/x-bzip2",
};

export type Resolved = { ok: true; file: string; stat: Stats } | { ok: false; status: 400 | 403 | 404; reason: string };

/**
 * Maps a URL path (still percent-encoded, below the route prefix) to a regular file inside one of `roots`.
 * Decodes each segment once and refuses `.`/`..`, separators smuggled in encoded form, backslashes and NUL
 * bytes before touching the file system; then requires the real path (symlinks resolved) to stay inside the
 * real root, so a link pointing out of the tree is refused too.
 */
export async function resolveInRoots(roots: readonly string[], encodedPath: string): Promise<Resolved> {
  const raw = encodedPath.split("/");
  if (raw.length === 0 || raw.some((s) => s === "")) return { ok: false, status: 404, reason: "empty path segment" };
  const segments: string[] = [];
  for (const s of raw) {
    let d: string;
    try {
      d = decodeURIComponent(s);
    } catch {
      return { ok: false, status: 400, reason: "bad percent-encoding" };
    }
    if (d === "." || d === ".." || d.includes("/") || d.includes("\\") || d.includes("\0"))
      return { ok: false, status: 400, reason: "illegal path segment" };
    segments.push(d);
  }
  const found = await findInRoots(roots, segments);
  if (!found.ok) return { ok: false, status: found.reason === "outside" ? 403 : 404, reason: found.detail };
  const stat = await fsStat(found.path);
  if (!stat.isFile()) return { ok: false, status: 404, reason: "not a file" };
  return { ok: true, file: found.path, stat };
}

const etagOf = (s: Stats) => `"${s.size.toString(16)}-${Math.floor(s.mtimeMs).toString(16)}-${s.ino.toString(16)}"`;

type Range = { start: number; end: number } | "unsatisfiable" | undefined;

/** One `bytes=` range (RFC 9110 §14.1.2). Multiple ranges are answered with the whole file, as the RFC allows. */
export function parseRange(header: string | undefined, size: number): Range {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return undefined;
  const [, a, b] = m;
  if (a === "" && b === "") return undefined;
  if (a === "") {
    const n = Number(b);
    if (n === 0) return "unsatisfiable";
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  const end = b === "" ? size - 1 : Math.min(Number(b), size - 1);
  if (start >= size || end < start) return "unsatisfiable";
  return { start, end };
}

/** What sendFile answered: the response for hono, and its status (the bytes may already be on their way). */
export interface Sent {
  response: Response;
  status: number;
}

/**
 * GET/HEAD of a resolved file with ETag, If-None-Match, Range/If-Range and an exact Content-Length. A body
 * is written straight to Node's response (file-pump.ts), not converted to a web stream and back.
 */
export async function sendFile(c: Context, file: string, stat: Stats): Promise<Sent> {
  const etag = etagOf(stat);
  const headers: Record<string, string> = {
    "Content-Type": CONTENT_TYPES[extname(file)] ?? "application/octet-stream",
    ETag: etag,
    "Last-Modified": stat.mtime.toUTCString(),
    "Accept-Ranges": "bytes",
  };
  const inm = c.req.header("if-none-match");
  if (inm?.split(",").some((t) => t.trim() === etag || t.trim() === "*"))
    return { status: 304, response: new Response(null, { status: 304, headers }) };

  const ifRange = c.req.header("if-range");
  const range = ifRange && ifRange !== etag ? undefined : parseRange(c.req.header("range"), stat.size);
  if (range === "unsatisfiable") {
    const response = new Response(null, {
      status: 416,
      headers: { ...headers, "Content-Range": `bytes */${stat.size}` },
    });
    return { status: 416, response };
  }
  const head = c.req.method === "HEAD";
  const start = range?.start ?? 0;
  const end = range?.end ?? stat.size - 1;
  const length = stat.size === 0 ? 0 : end - start + 1;
  headers["Content-Length"] = String(length);
  if (range) headers["Content-Range"] = `bytes ${start}-${end}/${stat.size}`;
  const status = range ? 206 : 200;
  if (head || length === 0) return { status, response: new Response(null, { status, headers }) };
  // Opened before the status line goes out: a file removed since it was resolved is still a clean 404.
  const fh = await open(file).catch(() => undefined);
  if (!fh) return { status: 404, response: new Response("not found: removed while opening\n", { status: 404 }) };
  const { outgoing } = c.env as HttpBindings;
  outgoing.writeHead(status, headers);
  const log = c.get("log");
  pumpFile(fh, outgoing, start, length).catch((err: Error) => {
    // The status line is gone already: all that is left to say is to cut the connection short.
    log.debug({ file, err: err.message }, "file transfer ended early");
    outgoing.destroy();
  });
  return { status, response: alreadySent(status) };
}

/**
 * node-server's RESPONSE_ALREADY_SENT (it writes nothing for it) with the status that did go out, which
 * hono's middleware reads for the request's log line and metrics.
 */
const alreadySent = (status: number): Response =>
  new (RESPONSE_ALREADY_SENT.constructor as typeof Response)(null, { status, headers: RESPONSE_ALREADY_SENT.headers });
