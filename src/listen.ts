import { readFileSync } from "node:fs";
import type { Logger } from "./log.ts";

/**
 * Whether this process runs with no_new_privs (e.g. `docker run --security-opt no-new-privileges`). The kernel
 * then ignores file capabilities, so the container image's `cap_net_bind_service` on node has no effect.
 */
export function hasNoNewPrivs(): boolean {
  try {
    return /^NoNewPrivs:\s*1$/m.test(readFileSync("/proc/self/status", "utf8"));
  } catch {
    return false;
  }
}

/** A bind failure explained: which listener, why, and what to set instead. */
export function explainBindError(
  what: string,
  flag: string,
  host: string,
  port: number,
  err: NodeJS.ErrnoException,
  noNewPrivs = false,
): string {
  const where = `${what} on ${host}:${port}`;
  switch (err.code) {
    case "EACCES":
      return (
        `${where}: permission denied; ports below 1024 need root or CAP_NET_BIND_SERVICE (or set --${flag} to a port above 1023, 0 disables it)` +
        (noNewPrivs
          ? "; this process runs with no_new_privs (e.g. --security-opt no-new-privileges), so a file capability on node is ignored: drop that option, or run as root with only NET_BIND_SERVICE (--user root --cap-drop ALL --cap-add NET_BIND_SERVICE)"
          : "")
      );
    case "EADDRINUSE":
      return `${where}: address in use by another process (stop it, or set --${flag}; 0 disables it)`;
    case "EADDRNOTAVAIL":
      return `${where}: no interface has address ${host} (check the host setting)`;
    default:
      return `${where}: ${err.message}`;
  }
}

export class ListenerError extends Error {
  override name = "ListenerError";
}

/**
 * Runs one listener's start-up. A failure is logged with its explanation and the rest keep serving, unless
 * `strict` (service units), where it stops start-up.
 */
export async function tryListen<T>(
  opts: { what: string; flag: string; host: string; port: number; strict: boolean; log: Logger },
  start: () => Promise<T>,
): Promise<T | undefined> {
  try {
    return await start();
  } catch (err) {
    // A server may wrap the socket error (with the errno error as its cause) to add its own context.
    const e = err as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
    const errno = e.code ? e : e.cause?.code ? e.cause : undefined;
    if (!errno) throw err;
    const msg = explainBindError(opts.what, opts.flag, opts.host, opts.port, errno, hasNoNewPrivs());
    if (opts.strict) throw new ListenerError(msg);
    opts.log.error({ listener: opts.what, code: errno.code }, `${msg}; continuing without it`);
    return undefined;
  }
}
