import type { Spec } from "../spec.ts";

/**
 * URL checks as Ignition makes them: Go's `net/url.Parse` (whose rules differ from WHATWG's `new URL`: a
 * port is any run of digits, the query is not checked, a `%` escape is checked in the path, fragment, host
 * and user info only), then the scheme's own rules (S3 `versionId`, S3 ARNs, RFC 2397 data URLs).
 */
export interface GoUrl {
  scheme: string;
  opaque: string;
  rawQuery: string;
}

const HEX = /^[0-9A-Fa-f]{2}$/;
const HOST_OK = /^[A-Za-z0-9!$&'()*+,;=:[\]<>"\-_.~]$/;
const USERINFO = /^[A-Za-z0-9\-._:~!$&'()*+,;=%@]*$/;

function unescapeError(s: string, mode: "path" | "fragment" | "host" | "userinfo"): string | undefined {
  for (let i = 0; i < s.length; i++) {
    const c = s[i] ?? "";
    if (c === "%") {
      const hex = s.slice(i + 1, i + 3);
      if (!HEX.test(hex)) return `invalid URL escape "${s.slice(i, i + 3)}"`;
      if (mode === "host" && Number.parseInt(hex[0] ?? "0", 16) < 8 && hex !== "25")
        return `invalid URL escape "%${hex}"`;
      i += 2;
    } else if (mode === "host" && c.charCodeAt(0) < 0x80 && !HOST_OK.test(c))
      return `invalid character ${JSON.stringify(c)} in host name`;
  }
  return undefined;
}

function hostError(host: string): string | undefined {
  let colonPort = "";
  if (host.startsWith("[")) {
    const i = host.lastIndexOf("]");
    if (i < 0) return "missing ']' in host";
    colonPort = host.slice(i + 1);
  } else {
    const i = host.lastIndexOf(":");
    if (i >= 0) colonPort = host.slice(i);
  }
  if (colonPort !== "" && !/^:[0-9]*$/.test(colonPort)) return `invalid port "${colonPort}" after host`;
  return unescapeError(host, "host");
}

/** `net/url.Parse`: the parts Ignition uses, or why Go would not parse it. */
export function parseGoUrl(raw: string): GoUrl | { error: string } {
  const hash = raw.indexOf("#");
  const main = hash < 0 ? raw : raw.slice(0, hash);
  if (/[\x00-\x1f\x7f]/.test(main)) return { error: "invalid control character in URL" };
  if (hash >= 0) {
    const e = unescapeError(raw.slice(hash + 1), "fragment");
    if (e) return { error: e };
  }
  let scheme = "";
  let rest = main;
  const m = /^([A-Za-z][A-Za-z0-9+\-.]*):/.exec(main);
  if (main.startsWith(":")) return { error: "missing protocol scheme" };
  if (m) {
    scheme = (m[1] ?? "").toLowerCase();
    rest = main.slice(m[0].length);
  }
  let rawQuery = "";
  if (rest.endsWith("?") && rest.split("?").length === 2) rest = rest.slice(0, -1);
  else {
    const q = rest.indexOf("?");
    if (q >= 0) {
      rawQuery = rest.slice(q + 1);
      rest = rest.slice(0, q);
    }
  }
  if (!rest.startsWith("/")) {
    if (scheme !== "") return { scheme, opaque: rest, rawQuery };
    const colon = rest.indexOf(":");
    const slash = rest.indexOf("/");
    if (colon >= 0 && (slash < 0 || colon < slash)) return { error: "first path segment in URL cannot contain colon" };
  }
  if (rest.startsWith("//") && (scheme !== "" || !rest.startsWith("///"))) {
    const after = rest.slice(2);
    const slash = after.indexOf("/");
    const authority = slash < 0 ? after : after.slice(0, slash);
    rest = slash < 0 ? "" : after.slice(slash);
    const at = authority.lastIndexOf("@");
    const e = hostError(at < 0 ? authority : authority.slice(at + 1));
    if (e) return { error: e };
    if (at >= 0) {
      const userinfo = authority.slice(0, at);
      if (!USERINFO.test(userinfo)) return { error: "invalid userinfo" };
      const ue = unescapeError(userinfo, "userinfo");
      if (ue) return { error: ue };
    }
  }
  const pe = unescapeError(rest, "path");
  if (pe) return { error: pe };
  return { scheme, opaque: "", rawQuery };
}

/** `url.Values` of a raw query as Go's ParseQuery builds them (pairs it cannot decode are left out). */
function queryValues(rawQuery: string, key: string): string[] | undefined {
  let found: string[] | undefined;
  for (const kv of rawQuery.split("&")) {
    if (kv === "" || kv.includes(";")) continue;
    const eq = kv.indexOf("=");
    const [k, v] = eq < 0 ? [kv, ""] : [kv.slice(0, eq), kv.slice(eq + 1)];
    try {
      const dk = decodeURIComponent(k.replace(/\+/g, " "));
      const dv = decodeURIComponent(v.replace(/\+/g, " "));
      if (dk === key) (found ??= []).push(dv);
    } catch {}
  }
  return found;
}

function s3ArnError(full: string): string | undefined {
  const parts = full.split(":");
  if (!full.startsWith("arn:") || parts.length < 6) return "invalid S3 ARN format";
  const resource = parts.slice(5).join(":");
  if (parts[2] !== "s3") return "invalid S3 ARN format";
  const slashes = full.split("/").length;
  if (resource.startsWith("accesspoint/") ? slashes < 3 : slashes < 2) return "invalid S3 ARN format";
  return undefined;
}

/** Ignition's check of a resource URL at `spec`; undefined when it is fine. */
export function urlError(raw: string, spec: Spec, dataUrl: (url: string) => string | undefined): string | undefined {
  const u = parseGoUrl(raw);
  if ("error" in u) return `unable to parse url: ${u.error}`;
  switch (u.scheme) {
    case "http":
    case "https":
    case "tftp":
    case "gs":
      return undefined;
    case "s3":
    case "arn": {
      if (u.scheme === "arn") {
        if (spec === "3.3.0") return 'invalid url scheme "arn" (S3 ARNs need Ignition spec 3.4.0)';
        const e = s3ArnError(`arn:${u.opaque}`);
        if (e) return e;
      }
      const version = queryValues(u.rawQuery, "versionId");
      if (version && (version[0] ?? "") === "") return "invalid S3 object VersionId";
      return undefined;
    }
    case "data":
      return dataUrl(raw);
    default:
      return `invalid url scheme ${JSON.stringify(u.scheme)} (http, https, tftp, s3, gs, data${spec === "3.3.0" ? "" : ", arn"})`;
  }
}
