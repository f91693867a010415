import { constants, gunzipSync, gzipSync } from "node:zlib";

/**
 * RFC 2397 data URLs, as Ignition reads them. The percent-encoded form keeps only RFC 2396 "unreserved"
 * characters literal (letters, digits, `-_.!~*'()`) and writes every other byte as %XX — the escaping of the
 * Go library Ignition and Butane use, so plain-text contents come out as Butane would write them.
 */
const LITERAL = /^[A-Za-z0-9\-_.!~*'()]$/;

export function percentEncode(data: Buffer): string {
  let out = "";
  for (const byte of data) {
    const ch = String.fromCharCode(byte);
    out += byte < 0x80 && LITERAL.test(ch) ? ch : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

export interface EncodedContents {
  source: string;
  /** "" for plain data URLs, "gzip" when the payload is gzip+base64. */
  compression: "" | "gzip";
}

/**
 * Butane's rule: the shortest of `data:,<percent-encoded>`, `data:;base64,<base64>` and (when allowed)
 * gzip+base64 with `compression: gzip`. Ties keep the earlier, more readable form.
 */
export function encodeContents(data: Buffer, allowGzip = true): EncodedContents {
  const candidates: EncodedContents[] = [
    { source: `data:,${percentEncode(data)}`, compression: "" },
    { source: `data:;base64,${data.toString("base64")}`, compression: "" },
  ];
  // gzip's fixed 18-byte frame, base64-encoded, is already 24+ characters: below that it can never win.
  const shortest = Math.min(candidates[0]?.source.length ?? 0, candidates[1]?.source.length ?? 0);
  if (allowGzip && shortest > "data:;base64,".length + 24) {
    const gz = gzipSync(data, { level: constants.Z_BEST_COMPRESSION });
    candidates.push({ source: `data:;base64,${gz.toString("base64")}`, compression: "gzip" });
  }
  return candidates.reduce((best, c) => (c.source.length < best.source.length ? c : best));
}

export interface DataUrl {
  mediaType: string;
  base64: boolean;
  data: Buffer;
}

/** Parses a data URL strictly (RFC 2397); throws with the reason on bad syntax. */
export function parseDataUrl(url: string): DataUrl {
  const m = /^data:([^,]*),(.*)$/s.exec(url);
  if (!m) throw new Error("data URL needs the form data:[<mediatype>][;base64],<data>");
  const meta = m[1] ?? "";
  const payload = m[2] ?? "";
  const params = meta.split(";");
  const base64 = params.length > 1 && params[params.length - 1] === "base64";
  if (base64) params.pop();
  const mediaType = params[0] ?? "";
  if (mediaType !== "" && !/^[A-Za-z0-9!#$&^_.+-]+\/[A-Za-z0-9!#$&^_.+-]+$/.test(mediaType)) {
    throw new Error(`data URL has an invalid media type "${mediaType}"`);
  }
  for (const p of params.slice(1))
    if (!/^[^=;]+=[^;]*$/.test(p)) throw new Error(`data URL has an invalid parameter "${p}"`);
  if (/%(?![0-9A-Fa-f]{2})/.test(payload)) throw new Error("data URL has a malformed %-escape");
  // Ignition's decoder refuses raw non-ASCII in the data part: such bytes must be %-escaped or base64.
  if (/[^\x00-\x7f]/.test(payload))
    throw new Error("data URL contains non-ASCII characters (escape them or use base64)");
  if (base64) {
    const text = decodeURIComponentBytes(payload).toString("latin1").replace(/\s+/g, "");
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0)
      throw new Error("data URL has invalid base64 data");
    return { mediaType, base64, data: Buffer.from(text, "base64") };
  }
  return { mediaType, base64, data: decodeURIComponentBytes(payload) };
}

function decodeURIComponentBytes(s: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === "%") {
      bytes.push(Number.parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(s.charCodeAt(i));
  }
  return Buffer.from(bytes);
}

/** The bytes a resource's `source` + `compression` stand for (data URLs only). */
export function decodeContents(source: string, compression?: string | null): Buffer {
  const { data } = parseDataUrl(source);
  return compression === "gzip" ? gunzipSync(data) : data;
}
