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
 * Butane's rule: `data:,<percent-encoded>` unless `data:;base64,<base64>` is shorter, then (when allowed)
 * gzip+base64 with `compression: gzip` if it is shorter still by more than the 4 characters of "gzip".
 */
export function encodeContents(data: Buffer, allowGzip = true): EncodedContents {
  const percent = `data:,${percentEncode(data)}`;
  const b64 = `data:;base64,${data.toString("base64")}`;
  const best: EncodedContents = { source: b64.length < percent.length ? b64 : percent, compression: "" };
  // gzip's fixed 18-byte frame is 24 base64 characters: below that size it can never win.
  if (allowGzip && best.source.length > "data:;base64,".length + 24 + 4) {
    const gz = `data:;base64,${gzipSync(data, { level: constants.Z_BEST_COMPRESSION }).toString("base64")}`;
    if (gz.length + 4 < best.source.length) return { source: gz, compression: "gzip" };
  }
  return best;
}

export interface DataUrl {
  mediaType: string;
  base64: boolean;
  data: Buffer;
}

const TSPECIAL = new Set([...'()<>@,;:\\"/[]?=']);
const isToken = (c: string | undefined) =>
  c !== undefined && c.length === 1 && c > " " && c < "\x7f" && !TSPECIAL.has(c);
const NOT_URL_CHAR = /[^\x21-\x7e]|[<>#"{}|\\^[\]`]/;
const MEDIA_TYPES = ["text", "image", "audio", "video", "application", "message", "multipart"];

/**
 * Parses a data URL with the rules of the Go library Ignition decodes them with (vincent-petithory/dataurl):
 * `data:[<type>/<subtype>][;<attr>=<value>]*[;base64],<data>`, where the data is URL characters with valid
 * %-escapes (no space, no `#`, `<`, `>`, `"`, braces, `|`, `\\`, `^`, brackets, backquote, nothing outside
 * ASCII), or base64 with padding. Throws with the reason.
 */
export function parseDataUrl(url: string): DataUrl {
  if (!url.startsWith("data:")) throw new Error("missing data prefix");
  let i = 5;
  const at = () => url[i];
  let mediaType = "";
  let base64 = false;
  if (at() !== ";" && at() !== ",") {
    if (at() === undefined) throw new Error("missing comma before data");
    const start = i;
    const x = at() === "x" || at() === "X";
    if (!x && !isToken(at())) throw new Error("invalid character after data prefix");
    i += x ? 2 : 1;
    const xToken = x && url[i - 1] === "-";
    for (; at() !== "/"; i++) {
      if (at() === undefined) throw new Error("missing media type slash");
      if (!isToken(at())) throw new Error("invalid character for media type");
    }
    if (!xToken && !MEDIA_TYPES.some((t) => url.slice(start, i).startsWith(t))) throw new Error("invalid media type");
    for (i++; at() !== ";" && at() !== ","; i++) {
      if (at() === undefined) throw new Error("incomplete media type");
      if (!isToken(at())) throw new Error("invalid character for media subtype");
    }
    mediaType = url.slice(start, i);
  }
  while (at() === ";") {
    i++;
    const start = i;
    if (at() === undefined || at() === "=" || at() === ",") throw new Error("unterminated parameter sequence");
    for (; at() !== "=" && at() !== ","; i++) {
      if (at() === undefined) throw new Error("unterminated parameter sequence");
      if (!isToken(at())) throw new Error("invalid character for parameter attribute");
    }
    if (at() === ",") {
      if (url.slice(start, i) !== "base64") throw new Error(`expected base64, got ${url.slice(start, i)}`);
      base64 = true;
      break;
    }
    i++;
    if (at() === '"') {
      for (i++; at() !== '"'; i++) {
        if (at() === undefined) throw new Error("unclosed quoted string");
        if (at() === "\\") i++;
        if ((at() ?? "") > "\x7f") throw new Error("invalid character for parameter value");
      }
      i++;
    } else {
      if (at() === undefined) throw new Error("missing comma before data");
      const valStart = i;
      for (; at() !== ";" && at() !== ","; i++) {
        if (at() === undefined) throw new Error("missing comma before data");
        if (!isToken(at())) throw new Error("invalid character for parameter value");
      }
      unescapeRfc2396(url.slice(valStart, i));
    }
    if (at() !== ";" && at() !== ",")
      throw new Error(at() === undefined ? "missing comma before data" : "expected semicolon or comma");
  }
  if (at() !== ",") throw new Error("missing comma before data");
  const payload = url.slice(i + 1);
  if (base64) {
    if (/[^A-Za-z0-9+/=\n]/.test(payload)) throw new Error("invalid data character");
    const text = payload.replace(/\n/g, "");
    if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*(|[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)$/.test(text))
      throw new Error("illegal base64 data");
    return { mediaType, base64, data: Buffer.from(text, "base64") };
  }
  if (NOT_URL_CHAR.test(payload)) throw new Error("invalid data character");
  return { mediaType, base64, data: unescapeRfc2396(payload) };
}

function unescapeRfc2396(s: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === "%") {
      if (!/^[0-9A-Fa-f]{2}$/.test(s.slice(i + 1, i + 3))) throw new Error("invalid %-escape in data URL");
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
