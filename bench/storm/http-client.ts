/**
 * HTTP for the simulated machines: node:http from the machine's leased address, the body kept (scripts,
 * Ignition) or only counted (kernel, initrd), a stall timeout rather than a total one (a 300 MB initrd shared
 * with a thousand other downloads takes long, but never goes quiet), and a few retries like the clients
 * that really make these requests (curl --retry in the installer, Ignition's own back-off).
 */
import { type Agent, request as httpRequest } from "node:http";

/** No byte for this long: the attempt fails. */
const STALL_MS = 60_000;
const ATTEMPTS = 3;
const RETRY_DELAY_MS = 1000;
/** Largest body kept in memory (scripts and configs are a few KiB). */
const KEEP_LIMIT = 4 << 20;

export class HttpError extends Error {
  constructor(
    message: string,
    readonly retries: number,
  ) {
    super(message);
  }
}

export interface HttpAnswer {
  status: number;
  bytes: number;
  /** The body, when asked to keep it. */
  body: Buffer;
}

interface Call {
  method: "GET" | "POST";
  url: string;
  localAddress: string;
  agent: Agent;
  keep: boolean;
  body?: string;
  signal: AbortSignal;
}

function once(c: Call): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = {};
    if (c.body !== undefined) {
      headers["content-type"] = "text/plain";
      headers["content-length"] = Buffer.byteLength(c.body);
    }
    const req = httpRequest(
      c.url,
      { method: c.method, agent: c.agent, localAddress: c.localAddress, headers, signal: c.signal },
      (res) => {
        const chunks: Buffer[] = [];
        let bytes = 0;
        res.on("data", (chunk: Buffer) => {
          bytes += chunk.length;
          if (c.keep && bytes <= KEEP_LIMIT) chunks.push(chunk);
        });
        res.on("error", reject);
        res.on("aborted", () => reject(new Error("connection closed mid-body")));
        res.on("end", () => {
          const length = res.headers["content-length"];
          if (length !== undefined && Number(length) !== bytes)
            return reject(new Error(`got ${bytes} bytes of ${length}`));
          if (c.keep && bytes > KEEP_LIMIT) return reject(new Error(`body over ${KEEP_LIMIT} bytes`));
          resolve({ status: res.statusCode ?? 0, bytes, body: Buffer.concat(chunks) });
        });
      },
    );
    req.setTimeout(STALL_MS, () => req.destroy(new Error(`no data for ${STALL_MS / 1000} s`)));
    req.on("error", reject);
    req.end(c.body);
  });
}

/**
 * One request with retries on transport errors and 5xx answers. Anything else but 2xx fails at once: a
 * 403 or 404 is an answer, and asking again would not change it.
 */
export async function call(c: Call): Promise<HttpAnswer & { retries: number }> {
  let last = "";
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    if (attempt > 0) await new Promise((r) => setTimeout(r, RETRY_DELAY_MS));
    if (c.signal.aborted) throw new HttpError("stopped at the deadline", attempt);
    try {
      const a = await once(c);
      if (a.status >= 200 && a.status < 300) return { ...a, retries: attempt };
      last = `${c.method} ${c.url} → ${a.status}${c.keep ? `: ${a.body.toString("utf8", 0, 200)}` : ""}`;
      if (a.status < 500) throw new HttpError(last, attempt);
    } catch (err) {
      if (err instanceof HttpError) throw err;
      last = `${c.method} ${c.url}: ${(err as Error).message}`;
    }
  }
  throw new HttpError(last, ATTEMPTS - 1);
}
