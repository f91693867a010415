/**
 * `fetch` reports every network failure as `TypeError: fetch failed` and keeps the reason in `cause`
 * (ENOTFOUND, ECONNREFUSED, a TLS error, a timeout). This walks the cause chain so the message a user reads
 * says which.
 */
export function describeError(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    if (e instanceof Error) {
      const code = (e as NodeJS.ErrnoException).code;
      const text = code && !e.message.includes(code) ? `${e.message} (${code})` : e.message;
      if (text && !parts.includes(text)) parts.push(text);
      e = e.cause;
    } else {
      parts.push(String(e));
      break;
    }
  }
  return parts.join(": ") || String(err);
}
