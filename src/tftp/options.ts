/** RFC 2347 option negotiation for read requests: blksize (2348), tsize and timeout (2349), windowsize (7440). */

export interface Limits {
  /** Largest blksize granted; a client asking for more gets this (RFC 2348 lets the server answer smaller). */
  maxBlksize: number;
  maxWindowsize: number;
  /** Retransmission timeout when the client does not negotiate one. */
  timeoutMs: number;
  /** Largest client `timeout` granted: a client asking 255 s would otherwise hold its slot for many minutes. */
  maxTimeoutMs: number;
}

export interface Negotiated {
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  /** Options to acknowledge in an OACK; empty → no OACK, the transfer starts with DATA 1 as in RFC 1350. */
  oack: Map<string, string>;
}

/** A plain decimal integer, or undefined for anything else ("1e3", "-1", "", absurdly long digits). */
function integer(value: string | undefined): number | undefined {
  if (value === undefined || !/^[0-9]{1,10}$/.test(value)) return undefined;
  return Number(value);
}

/**
 * Decides the transfer parameters from the client's options. Options that are unknown or carry invalid
 * values are left out of the OACK, which RFC 2347 says the client must take as "not granted".
 * `size` is the byte count the client will receive, or undefined when it is not known in advance
 * (netascii), in which case tsize is not acknowledged.
 */
export function negotiate(
  requested: ReadonlyMap<string, string>,
  limits: Limits,
  size: number | undefined,
): Negotiated {
  const oack = new Map<string, string>();
  let blksize = 512;
  let windowsize = 1;
  let timeoutMs = limits.timeoutMs;

  const b = integer(requested.get("blksize"));
  if (b !== undefined && b >= 8 && b <= 65464) {
    blksize = Math.min(b, limits.maxBlksize);
    oack.set("blksize", String(blksize));
  }
  const t = integer(requested.get("timeout"));
  if (t !== undefined && t >= 1 && t <= 255 && t * 1000 <= limits.maxTimeoutMs) {
    // RFC 2349: the server must echo the client's value unchanged or leave the option out, so a value
    // above the cap is not lowered but refused.
    timeoutMs = t * 1000;
    oack.set("timeout", String(t));
  }
  if (requested.has("tsize") && integer(requested.get("tsize")) !== undefined && size !== undefined) {
    oack.set("tsize", String(size));
  }
  const w = integer(requested.get("windowsize"));
  if (w !== undefined && w >= 1 && w <= 65535) {
    windowsize = Math.min(w, limits.maxWindowsize);
    oack.set("windowsize", String(windowsize));
  }
  return { blksize, windowsize, timeoutMs, oack };
}
