/** Longest client-supplied string kept in an event or a log line, in UTF-8 bytes. */
export const CLIP_BYTES = 256;
/** Most entries of a client-supplied object (TFTP options, query strings) kept in an event. */
export const CLIP_ENTRIES = 32;

/** `text` cut to at most `max` UTF-8 bytes on a character boundary. */
export function clipText(text: string, max = CLIP_BYTES): string {
  const bytes = Buffer.from(text, "utf8");
  if (bytes.length <= max) return text;
  let end = max;
  // Back off continuation bytes (10xxxxxx) so no character is cut in half.
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString("utf8");
}

/**
 * A copy of an event's detail with what a client could make large cut down: a long string keeps its first
 * CLIP_BYTES bytes and gains a sibling `<key>Bytes` with its full length; an object keeps its first
 * CLIP_ENTRIES entries (and `<key>Omitted`), one level down. Nothing else changes.
 */
export function clipDetail(detail: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(detail)) {
    if (typeof value === "string") {
      const clipped = clipText(value);
      out[key] = clipped;
      if (clipped !== value) out[`${key}Bytes`] = Buffer.byteLength(value);
    } else if (value && typeof value === "object" && !Array.isArray(value)) {
      const entries = Object.entries(value);
      out[key] = Object.fromEntries(
        entries.slice(0, CLIP_ENTRIES).map(([k, v]) => [clipText(k), typeof v === "string" ? clipText(v) : v]),
      );
      if (entries.length > CLIP_ENTRIES) out[`${key}Omitted`] = entries.length - CLIP_ENTRIES;
    } else out[key] = value;
  }
  return out;
}
