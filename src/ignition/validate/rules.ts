import { posix } from "node:path";
import { parseDataUrl } from "../dataurl.ts";
import { type Check, notEmpty, type Obj, str } from "./check.ts";
import { diskRules, storageRules, topLevelRules } from "./storage.ts";
import { parseUnit, unitSyntaxError } from "./unit-syntax.ts";
import { parseGoUrl, urlError } from "./url.ts";

type Rule = (o: Obj, c: Check) => void;

const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** Absolute and clean (Go's path.Clean leaves it unchanged); undefined when fine. */
export function pathError(p: string): string | undefined {
  if (p === "") return "path not specified";
  if (!p.startsWith("/")) return `path not absolute: "${p}"`;
  if (posix.normalize(p) !== p || (p.length > 1 && p.endsWith("/")))
    return `path is not fully simplified (no "//", ".", ".." or trailing "/"): "${p}"`;
  return undefined;
}

function checkUrl(c: Check, sub: string, url: string): void {
  const e = urlError(url, c.spec, (u) => {
    try {
      parseDataUrl(u);
      return undefined;
    } catch (err) {
      return `invalid data URL: ${(err as Error).message}`;
    }
  });
  if (e) c.error(sub, e);
}

const HASH_LENGTH: Record<string, number> = { sha512: 128, sha256: 64 };

const resource: Rule = (o, c) => {
  const compression = str(o.compression);
  if (compression !== undefined && compression !== "" && compression !== "gzip")
    c.error("compression", `invalid compression method "${compression}" (use "" or "gzip")`);
  const hash = str((o.verification as Obj | undefined)?.hash);
  if (hash !== undefined) {
    const dash = hash.indexOf("-");
    const [fn, sum] = dash < 0 ? [hash, undefined] : [hash.slice(0, dash), hash.slice(dash + 1)];
    const want = HASH_LENGTH[fn];
    if (sum === undefined) c.error("verification.hash", "malformed hash specifier (<function>-<hex digest>)");
    else if (want === undefined) c.error("verification.hash", `unrecognized hash function "${fn}"`);
    else if (sum.length !== want) c.error("verification.hash", `incorrect size for ${fn} hash (${want} hex digits)`);
    // Ignition decodes the digest only when it fetches, and a bad digit fails the boot there.
    else if (!/^[0-9a-fA-F]*$/.test(sum)) c.error("verification.hash", "hash digest is not hexadecimal");
    if (o.source === undefined || o.source === null) c.error("verification.hash", "verification requires a source");
  }
  if (notEmpty(o.source)) checkUrl(c, "source", o.source);
  if (list(o.httpHeaders).length > 0) {
    const u = notEmpty(o.source) ? parseGoUrl(o.source) : { error: "no source" };
    if ("error" in u) c.error("httpHeaders", "HTTP headers need a source URL");
    else if (u.scheme !== "http" && u.scheme !== "https")
      c.error("httpHeaders", "cannot use HTTP headers with this source scheme (http or https only)");
  }
};

/** Sources Ignition requires: merged configs and CA bundles. */
const requiredSource = (c: Check, r: unknown, sub: string) => {
  if (!notEmpty((r as Obj | undefined)?.source)) c.error(sub, "source is required");
};

const mode = (o: Obj, c: Check) => {
  if (typeof o.mode !== "number") return;
  if (o.mode < 0 || o.mode > 0o7777) c.error("mode", `illegal file mode ${o.mode} (0 to 07777)`);
  else if (o.mode & 0o7000)
    c.warn("mode", "setuid/setgid/sticky bits are not supported or functional in spec versions older than 3.6.0");
};

const node: Rule = (o, c) => {
  const e = pathError(String(o.path ?? ""));
  if (e) c.error("path", e);
};

const owner: Rule = (o, c) => {
  if (typeof o.id === "number" && notEmpty(o.name)) c.error("", "cannot set both id and name");
};

const FORMATS = ["ext4", "btrfs", "xfs", "swap", "vfat", "none"];
/** Label limits in bytes, per mkfs tool. */
const FS_LABEL_MAX: Record<string, number> = { ext4: 16, btrfs: 256, xfs: 12, swap: 15, vfat: 11 };
const bytes = (s: string) => Buffer.byteLength(s, "utf8");

const filesystem: Rule = (o, c) => {
  if (notEmpty(o.path)) {
    const e = pathError(o.path);
    if (e) c.error("path", e);
  }
  const de = pathError(String(o.device ?? ""));
  if (de) c.error("device", de);
  const format = str(o.format);
  if (!notEmpty(format)) {
    const others = ["path", "label", "uuid"].filter((k) => notEmpty(o[k]));
    if (o.wipeFilesystem === true) others.push("wipeFilesystem");
    for (const k of ["mountOptions", "options"]) if (list(o[k]).length) others.push(k);
    if (others.length) c.error("format", `format is required when ${others.join(", ")} is set`);
  } else if (!FORMATS.includes(format))
    c.error("format", `invalid filesystem format "${format}" (${FORMATS.join(", ")})`);
  if (notEmpty(o.label)) {
    if (!notEmpty(format)) c.error("label", "a filesystem label needs a format");
    else {
      const max = FS_LABEL_MAX[format];
      if (max !== undefined && bytes(o.label) > max)
        c.error("label", `filesystem labels cannot be longer than ${max} bytes when using ${format}`);
    }
  }
};

const partition: Rule = (o, c) => {
  if (
    o.shouldExist === false &&
    (o.label != null || notEmpty(o.typeGuid) || notEmpty(o.guid) || o.startMiB != null || o.sizeMiB != null)
  )
    c.error("", "shouldExist is false with other options also specified");
  if (!o.number && o.label == null) c.error("", "a partition number >= 1 or a label must be specified");
  if (typeof o.label === "string") {
    if (bytes(o.label) > 36) c.error("label", "partition labels may not exceed 36 bytes");
    if (o.label.includes(":")) c.error("label", 'partition labels may not contain ":"');
  }
  for (const k of ["guid", "typeGuid"]) {
    const v = str(o[k]);
    if (v !== undefined && !/^(|[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})$/.test(v))
      c.error(k, `"${v}" does not match the form of a GUID`);
  }
};

const luks: Rule = (o, c) => {
  named(o, c);
  if (String(o.name).includes("/")) c.error("name", 'luks device name cannot contain "/"');
  if (notEmpty(o.label) && bytes(o.label) > 47) c.error("label", "luks device labels cannot be longer than 47 bytes");
  if (!notEmpty(o.device)) c.error("device", "luks device is required");
  else {
    const e = pathError(o.device);
    if (e) c.error("device", e);
  }
  const clevis = (o.clevis ?? {}) as Obj;
  const custom = (clevis.custom ?? {}) as Obj;
  const others =
    list(clevis.tang).length > 0 ||
    clevis.tpm2 === true ||
    (typeof clevis.threshold === "number" && clevis.threshold !== 0);
  if (notEmpty(custom.pin) && others) c.error("clevis", "cannot use custom clevis config with tpm2, tang or threshold");
  const cex = (o.cex as Obj | undefined)?.enabled === true;
  if (cex && (notEmpty(custom.pin) || others)) c.error("cex", "cannot use cex with clevis");
  if (cex && notEmpty((o.keyFile as Obj | undefined)?.source)) c.error("cex", "cannot use cex with a key file");
};

const RAID_LEVELS = [
  "linear",
  "raid0",
  "0",
  "stripe",
  "raid1",
  "1",
  "mirror",
  "raid4",
  "4",
  "raid5",
  "5",
  "raid6",
  "6",
  "raid10",
  "10",
];

/**
 * Ignition validates no name of a user, group, RAID array or LUKS volume, but creating one named "" fails the
 * boot; Kindling refuses it.
 */
const named: Rule = (o, c) => {
  if (o.name === "") c.error("name", "name must not be empty (Ignition would fail the boot creating it)");
};

export const RULES: Record<string, Rule> = {
  PasswdUser: named,
  PasswdGroup: named,
  Config: topLevelRules,
  IgnitionConfig: (o, c) => list(o.merge).forEach((r, i) => requiredSource(c, r, `merge[${i}]`)),
  TLS: (o, c) => list(o.certificateAuthorities).forEach((r, i) => requiredSource(c, r, `certificateAuthorities[${i}]`)),
  Proxy: (o, c) => {
    for (const k of ["httpProxy", "httpsProxy"]) {
      const v = str(o[k]);
      if (v === undefined) continue;
      const u = parseGoUrl(v);
      if ("error" in u) c.error(k, `unable to parse url: ${u.error}`);
      else if (u.scheme !== "http" && u.scheme !== "https") c.error(k, "proxies must be http(s)");
      else if (u.scheme === "http" && k === "httpsProxy")
        c.warn(k, "insecure plaintext HTTP proxy specified for HTTPS resources");
    }
  },
  Resource: resource,
  HTTPHeader: (o, c) => {
    if (o.name === "") c.error("name", "HTTP header name can't be empty");
    if (o.value === "") c.error("value", "unable to parse HTTP header: its value is empty");
  },
  Storage: storageRules,
  Directory: (o, c) => {
    node(o, c);
    mode(o, c);
  },
  File: (o, c) => {
    node(o, c);
    mode(o, c);
    if (o.overwrite === true && (o.contents as Obj | undefined)?.source == null)
      c.error("overwrite", "overwrite must be false if source is unspecified");
  },
  Link: node,
  NodeUser: owner,
  NodeGroup: owner,
  Filesystem: filesystem,
  Partition: partition,
  Luks: luks,
  ClevisCustom: (o, c) => {
    if (!notEmpty(o.pin) && !notEmpty(o.config) && o.needsNetwork !== true) return;
    if (!notEmpty(o.pin)) c.error("pin", "clevis pin is required");
    else if (!["tpm2", "tang", "sss"].includes(o.pin)) c.error("pin", `unknown clevis pin "${o.pin}"`);
    if (!notEmpty(o.config)) c.error("config", "clevis config is required");
  },
  Tang: (o, c) => {
    const u = parseGoUrl(String(o.url ?? ""));
    if ("error" in u) c.error("url", `unable to parse url: ${u.error}`);
    else if (u.scheme !== "http" && u.scheme !== "https") c.error("url", "tang URL must be http or https");
    if (!notEmpty(o.thumbprint)) c.error("thumbprint", "tang thumbprint is required");
    if (notEmpty(o.advertisement)) {
      try {
        JSON.parse(o.advertisement);
      } catch {
        c.error("advertisement", "tang advertisement is not valid JSON");
      }
    }
  },
  Raid: (o, c) => {
    named(o, c);
    const level = str(o.level);
    if (!notEmpty(level)) c.error("level", "raid level is required");
    else if (!RAID_LEVELS.includes(level)) c.error("level", `unrecognized raid level "${level}"`);
    else if (["linear", "raid0", "0", "stripe"].includes(level) && typeof o.spares === "number" && o.spares !== 0)
      c.error("level", "spares unsupported for linear and raid0 arrays");
    if (list(o.devices).length === 0) c.error("devices", "raid devices are required");
    list(o.devices).forEach((d, i) => {
      const e = pathError(String(d));
      if (e) c.error(`devices[${i}]`, e);
    });
  },
  Disk: (o, c) => {
    const e = o.device === "" ? "disk device is required" : pathError(String(o.device));
    if (e) return c.error("device", e);
    diskRules(o, c);
  },
  Unit: (o, c) => {
    const name = String(o.name);
    if (!UNIT_TYPES.includes(goExt(name)))
      c.error("name", `invalid systemd unit extension in "${name}" (${UNIT_TYPES.join(", ")})`);
    // Ignition joins the name onto /etc/systemd/system: a "/" would write outside it.
    if (name.includes("/")) c.error("name", 'unit name must not contain "/"');
    const contents = str(o.contents);
    const e = contents === undefined ? undefined : unitSyntaxError(contents);
    if (e) c.error("contents", `invalid unit content: ${e}`);
    else if (o.enabled === true && notEmpty(contents) && !hasInstallSection(contents))
      c.warn("contents", `unit "${name}" is enabled, but has no install section so enable does nothing`);
  },
  Dropin: (o, c) => {
    const contents = str(o.contents);
    const e = contents === undefined ? undefined : unitSyntaxError(contents);
    if (e) c.error("contents", `invalid unit content: ${e}`);
    const name = String(o.name);
    if (goExt(name) !== ".conf") c.error("name", `invalid systemd drop-in extension in "${name}" (.conf)`);
    if (name.includes("/")) c.error("name", 'drop-in name must not contain "/"');
  },
  Systemd: (o, c) => {
    const units = list(o.units) as Obj[];
    units.forEach((u, i) => {
      const m = /^(.+?)@(.+?)\.service$/.exec(String(u.name));
      if (!m || u.enabled !== true) return;
      const template = units.find((t) => t.name === `${m[1]}@.service`);
      const contents = str(template?.contents);
      if (!notEmpty(contents) || unitSyntaxError(contents)) return;
      if (!hasInstallSection(contents))
        c.warn(`units[${i}].contents`, `template unit "${m[1]}@.service" for "${u.name}" doesn't have Install section`);
    });
  },
};

const UNIT_TYPES = [
  ".service",
  ".socket",
  ".device",
  ".mount",
  ".automount",
  ".swap",
  ".target",
  ".path",
  ".timer",
  ".snapshot",
  ".slice",
  ".scope",
];

/** Go's path.Ext: from the last "." of the last element (so ".service" is a unit type, unlike Node's extname). */
function goExt(name: string): string {
  const dot = name.lastIndexOf(".");
  return dot > name.lastIndexOf("/") ? name.slice(dot) : "";
}

/** Whether the (syntactically valid) unit text has an option in an `[Install]` section. */
function hasInstallSection(contents: string): boolean {
  return parseUnit(contents).optionSections.includes("Install");
}
