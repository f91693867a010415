import { decodeContents } from "../../ignition/dataurl.ts";

/** What a masked value shows instead of the secret. */
export const MASK = "••• masked •••";

const SECRET_KEYS = new Set(["passwordHash", "password_hash", "sshAuthorizedKeys", "ssh_authorized_keys"]);

/** Files whose contents are credentials: anything under /etc/ssh, or with "key" in its name. */
function secretFile(path: unknown): boolean {
  if (typeof path !== "string") return false;
  const name = path.slice(path.lastIndexOf("/") + 1);
  return path.startsWith("/etc/ssh/") || /key/i.test(name);
}

function maskSource(source: unknown): unknown {
  if (typeof source !== "string" || !source.startsWith("data:")) return source;
  const comma = source.indexOf(",");
  return `${source.slice(0, comma + 1)}${MASK}`;
}

function maskFile(file: Record<string, unknown>): Record<string, unknown> {
  const out = { ...file };
  const contents = file.contents as Record<string, unknown> | undefined;
  if (contents && typeof contents === "object")
    out.contents = { ...contents, source: maskSource(contents.source), compression: undefined };
  if (Array.isArray(file.append))
    out.append = file.append.map((a: Record<string, unknown>) => ({
      ...a,
      source: maskSource(a.source),
      compression: undefined,
    }));
  return out;
}

/**
 * A data URL's contents as readable text (`data:,` + the decoded text, compression undone), so that secrets
 * inside it can be masked and the operator can read the script; binary contents become a size.
 */
function decodedSource(resource: Record<string, unknown>): Record<string, unknown> {
  const { source, compression, ...rest } = resource;
  if (typeof source !== "string" || !source.startsWith("data:")) return resource;
  let data: Buffer;
  try {
    data = decodeContents(source, typeof compression === "string" ? compression : null);
  } catch {
    return resource;
  }
  const text = data.toString("utf8");
  const binary = text.includes("\uFFFD") || text.includes("\0");
  return { ...rest, source: binary ? `data:… (${data.length} bytes, binary)` : `data:,${text}` };
}

/**
 * A copy of an Ignition config fit to show on a screen: password hashes, SSH keys, the contents of key
 * files (data URLs), the signatures of Kindling's signed URLs (they grant the machine's config) and every
 * metadata value substituted into it are replaced by MASK. Other data URLs are shown decoded (secrets in
 * them masked too). Structure, paths and units stay readable.
 */
export function maskIgnition(config: unknown, secrets: readonly string[]): unknown {
  // Longest first, so a value that contains another is masked whole.
  const values = [...new Set(secrets.filter((s) => s.length >= 4))].sort((a, b) => b.length - a.length);
  const maskString = (s: string): string => {
    let out = s.replace(/([?&]sig=)[^&"'\s]+/g, `$1${MASK}`);
    for (const v of values) out = out.split(v).join(MASK);
    return out;
  };
  const walk = (v: unknown, key: string | undefined, parentKey: string | undefined): unknown => {
    if (key && SECRET_KEYS.has(key)) return Array.isArray(v) ? v.map(() => MASK) : MASK;
    if (typeof v === "string") return maskString(v);
    if (Array.isArray(v)) return v.map((x) => walk(x, undefined, key));
    if (v && typeof v === "object") {
      let obj = v as Record<string, unknown>;
      if (parentKey === "files" && secretFile(obj.path)) obj = maskFile(obj);
      else obj = decodedSource(obj);
      return Object.fromEntries(Object.entries(obj).map(([k, x]) => [k, walk(x, k, key)]));
    }
    return v;
  };
  return walk(config, undefined, undefined);
}

/** Every string leaf of metadata objects (nested values too): what templates may have put into a config. */
export function metadataStrings(...metadata: readonly Record<string, unknown>[]): string[] {
  const out: string[] = [];
  const walk = (v: unknown) => {
    if (typeof v === "string") out.push(v);
    else if (typeof v === "number") out.push(String(v));
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === "object") Object.values(v).forEach(walk);
  };
  metadata.forEach(walk);
  return out;
}
