import { posix } from "node:path";
import { parseDataUrl } from "./dataurl.ts";
import type { Diagnostic } from "./diagnostic.ts";
import { IGNITION, IGNITION_SCHEMAS, isSpec, isUnset, type Node, SPECS, type Spec } from "./spec.ts";
import { unitSyntaxError } from "./unit-syntax.ts";

/**
 * Validates an Ignition config at the spec named by its `ignition.version`: shape first (zod schema of that
 * spec: types, required fields, no unknown keys), then the semantic rules Ignition itself enforces before it
 * touches a disk. Every diagnostic carries the JSON path of the field.
 */
export function validateIgnition(config: unknown): Diagnostic[] {
  const version = (config as { ignition?: { version?: unknown } } | null)?.ignition?.version;
  if (!isSpec(version))
    return [{ severity: "error", path: "$.ignition.version", message: unsupportedVersion(version) }];
  const parsed = IGNITION_SCHEMAS[version].safeParse(config);
  if (!parsed.success) {
    return parsed.error.issues.flatMap((issue): Diagnostic[] => {
      const path = jsonPath(issue.path as (string | number)[]);
      if (issue.code === "unrecognized_keys") {
        return issue.keys.map((k) => ({
          severity: "error",
          path: `${path}.${k}`,
          message: unknownKeyMessage(issue.path as (string | number)[], k, version),
        }));
      }
      return [{ severity: "error", path, message: issue.message }];
    });
  }
  return semanticChecks(config as Cfg, version);
}

export function unsupportedVersion(version: unknown): string {
  if (typeof version !== "string") return `ignition.version is required (one of ${SPECS.join(", ")})`;
  if (version.endsWith("-experimental"))
    return `Ignition spec ${version} is experimental; no released Flatcar accepts it`;
  if (/^[12]\./.test(version))
    return `Ignition spec ${version} is the 2.x/1.x line; Kindling serves 3.x (${SPECS.join(", ")})`;
  return `Ignition spec ${version} is not supported; use one of ${SPECS.join(", ")}`;
}

function unknownKeyMessage(at: (string | number)[], key: string, spec: Spec): string {
  let node: Node = IGNITION;
  for (const seg of at) {
    if (node.kind === "array") node = node.of;
    if (node.kind === "object" && typeof seg === "string") {
      const next = node.fields.find((f) => f.name === seg);
      if (!next) break;
      node = next.node;
    }
  }
  if (node.kind === "array") node = node.of;
  const field = node.kind === "object" ? node.fields.find((f) => f.name === key) : undefined;
  if (field?.since) return `"${key}" needs Ignition spec ${field.since}; this config is ${spec}`;
  return `unknown key "${key}"`;
}

export function jsonPath(segs: readonly (string | number | symbol)[]): string {
  return `$${segs.map((s) => (typeof s === "number" ? `[${s}]` : `.${String(s)}`)).join("")}`;
}

type Obj = Record<string, unknown>;
interface Resource {
  source?: string | null;
  compression?: string | null;
  httpHeaders?: { name: string; value?: string | null }[];
  verification?: { hash?: string | null };
}
interface Owner {
  id?: number | null;
  name?: string | null;
}
interface FsNode {
  path: string;
  overwrite?: boolean | null;
  user?: Owner;
  group?: Owner;
  mode?: number | null;
  contents?: Resource;
  append?: Resource[];
  target?: string | null;
  hard?: boolean | null;
}
interface Cfg {
  ignition: {
    version: Spec;
    config?: { merge?: Resource[]; replace?: Resource };
    timeouts?: { httpResponseHeaders?: number | null; httpTotal?: number | null };
    security?: { tls?: { certificateAuthorities?: Resource[] } };
    proxy?: { httpProxy?: string | null; httpsProxy?: string | null; noProxy?: string[] };
  };
  storage?: {
    disks?: { device: string; partitions?: Obj[] }[];
    raid?: { name: string; level?: string | null; devices?: string[]; spares?: number | null }[];
    filesystems?: {
      device: string;
      format?: string | null;
      path?: string | null;
      label?: string | null;
      uuid?: string | null;
    }[];
    files?: FsNode[];
    directories?: FsNode[];
    links?: FsNode[];
    luks?: {
      name: string;
      device?: string | null;
      keyFile?: Resource;
      clevis?: {
        tang?: { url: string; thumbprint?: string | null }[];
        threshold?: number | null;
        tpm2?: boolean | null;
        custom?: Obj;
      };
      cex?: { enabled?: boolean | null };
    }[];
  };
  systemd?: {
    units?: { name: string; contents?: string | null; dropins?: { name: string; contents?: string | null }[] }[];
  };
  passwd?: { users?: { name: string; sshAuthorizedKeys?: string[] }[]; groups?: { name: string }[] };
  kernelArguments?: { shouldExist?: string[]; shouldNotExist?: string[] };
}

const UNIT_SUFFIXES = [
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
const FORMATS = ["ext4", "btrfs", "xfs", "vfat", "swap", "none"];
const LABEL_MAX: Record<string, number> = { ext4: 16, btrfs: 256, xfs: 12, vfat: 11, swap: 15 };
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
const HASH = /^(sha512-[0-9a-f]{128}|sha256-[0-9a-f]{64})$/;
const GUID = /^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$/;
const SCHEMES = ["http", "https", "tftp", "s3", "gs", "data"];

function semanticChecks(cfg: Cfg, spec: Spec): Diagnostic[] {
  const out: Diagnostic[] = [];
  const err = (path: string, message: string) => out.push({ severity: "error", path, message });
  const warn = (path: string, message: string) => out.push({ severity: "warning", path, message });

  const checkAbsClean = (path: string, p: string | null | undefined, what: string) => {
    if (p === null || p === undefined) return;
    if (!p.startsWith("/")) err(path, `${what} must be an absolute path, got "${p}"`);
    else if (posix.normalize(p) !== p || (p.length > 1 && p.endsWith("/")))
      err(path, `${what} must be a clean path (no "//", ".", ".." or trailing "/"): "${p}"`);
  };

  const checkUrl = (path: string, url: string, allowData = true) => {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      return err(path, `"${truncate(url)}" is not a valid URL`);
    }
    const scheme = u.protocol.replace(/:$/, "");
    const schemes = spec === "3.3.0" ? SCHEMES : [...SCHEMES, "arn"];
    if (!schemes.includes(scheme) || (scheme === "data" && !allowData))
      return err(path, `URL scheme "${scheme}" is not supported (use ${schemes.join(", ")})`);
    if (scheme === "data") {
      try {
        parseDataUrl(url);
      } catch (e) {
        err(path, (e as Error).message);
      }
    }
  };

  const checkResource = (path: string, r: Resource | undefined, needSource = false) => {
    if (!r) return;
    if (r.source !== null && r.source !== undefined) checkUrl(`${path}.source`, r.source);
    else if (needSource) err(`${path}.source`, "source is required");
    if (r.compression !== null && r.compression !== undefined && !["", "gzip"].includes(r.compression)) {
      err(`${path}.compression`, `compression must be "" or "gzip", got "${r.compression}"`);
    }
    const hash = r.verification?.hash;
    if (hash !== null && hash !== undefined && !HASH.test(hash))
      err(`${path}.verification.hash`, `hash must be sha512-<128 hex> or sha256-<64 hex>, got "${truncate(hash)}"`);
    const headers = r.httpHeaders ?? [];
    if (headers.length > 0) {
      const scheme = r.source ? r.source.split(":")[0] : undefined;
      if (scheme !== "http" && scheme !== "https")
        err(`${path}.httpHeaders`, "httpHeaders need an http or https source");
      const names = new Set<string>();
      headers.forEach((h, i) => {
        if (h.name === "") err(`${path}.httpHeaders[${i}].name`, "header name must not be empty");
        if (names.has(h.name.toLowerCase())) err(`${path}.httpHeaders[${i}].name`, `duplicate header "${h.name}"`);
        names.add(h.name.toLowerCase());
      });
    }
  };

  const ign = cfg.ignition;
  ign.config?.merge?.forEach((r, i) => checkResource(`$.ignition.config.merge[${i}]`, r, true));
  if (ign.config?.replace && Object.values(ign.config.replace).some((v) => v !== null && v !== undefined)) {
    checkResource("$.ignition.config.replace", ign.config.replace, true);
  }
  ign.security?.tls?.certificateAuthorities?.forEach((r, i) =>
    checkResource(`$.ignition.security.tls.certificateAuthorities[${i}]`, r, true),
  );
  for (const k of ["httpProxy", "httpsProxy"] as const) {
    const v = ign.proxy?.[k];
    if (v) {
      try {
        const u = new URL(v);
        if (!["http:", "https:"].includes(u.protocol)) err(`$.ignition.proxy.${k}`, "proxy URL must be http or https");
      } catch {
        err(`$.ignition.proxy.${k}`, `"${v}" is not a valid URL`);
      }
    }
  }

  const st = cfg.storage ?? {};
  // One node per path across files, directories and links.
  const paths = new Map<string, string>();
  const claim = (path: string, p: string) => {
    const prev = paths.get(p);
    if (prev) err(path, `duplicate path "${p}" (also at ${prev})`);
    else paths.set(p, path);
  };
  const checkOwner = (path: string, o: Owner | undefined) => {
    if (o && o.id !== null && o.id !== undefined && o.name !== null && o.name !== undefined)
      err(path, "set id or name, not both");
  };
  const checkMode = (path: string, mode: number | null | undefined) => {
    if (mode === null || mode === undefined) return;
    if (mode < 0 || mode > 0o7777) err(path, `mode ${mode} is out of range (0 to 07777)`);
    else if (mode & 0o7000 && spec === "3.3.0")
      warn(
        path,
        `mode 0${mode.toString(8)} sets setuid/setgid/sticky bits, which spec 3.3.0 ignores (honoured from 3.4.0)`,
      );
  };
  const nodes: [string, FsNode[] | undefined][] = [
    ["files", st.files],
    ["directories", st.directories],
    ["links", st.links],
  ];
  for (const [kind, list] of nodes) {
    list?.forEach((n, i) => {
      const base = `$.storage.${kind}[${i}]`;
      checkAbsClean(`${base}.path`, n.path, "path");
      claim(`${base}.path`, n.path);
      checkOwner(`${base}.user`, n.user);
      checkOwner(`${base}.group`, n.group);
      checkMode(`${base}.mode`, n.mode);
      if (kind === "files") {
        checkResource(`${base}.contents`, n.contents);
        n.append?.forEach((r, j) => checkResource(`${base}.append[${j}]`, r));
        if (n.overwrite === true && !n.contents?.source)
          err(
            `${base}.overwrite`,
            "overwrite needs contents.source (else the file would be deleted and not recreated)",
          );
      }
      if (kind === "links") {
        if (!n.target) err(`${base}.target`, "link target is required");
      }
    });
  }

  const devices = new Set<string>();
  st.disks?.forEach((d, i) => {
    const base = `$.storage.disks[${i}]`;
    checkAbsClean(`${base}.device`, d.device, "device");
    if (devices.has(d.device)) err(`${base}.device`, `duplicate disk "${d.device}"`);
    devices.add(d.device);
    const numbers = new Set<number>();
    const labels = new Set<string>();
    d.partitions?.forEach((p, j) => {
      const pb = `${base}.partitions[${j}]`;
      const num = typeof p.number === "number" ? p.number : 0;
      if (num < 0) err(`${pb}.number`, "partition number must not be negative");
      if (num > 0) {
        if (numbers.has(num)) err(`${pb}.number`, `duplicate partition number ${num}`);
        numbers.add(num);
      }
      const label = p.label;
      if (typeof label === "string") {
        if (label.length > 36) err(`${pb}.label`, "partition label must be at most 36 characters");
        if (label.includes(":")) err(`${pb}.label`, 'partition label must not contain ":"');
        if (num === 0 && labels.has(label)) err(`${pb}.label`, `duplicate partition label "${label}"`);
        labels.add(label);
      }
      for (const k of ["typeGuid", "guid"]) {
        const v = p[k];
        if (typeof v === "string" && v !== "" && !GUID.test(v)) err(`${pb}.${k}`, `"${v}" is not a GUID`);
      }
      for (const k of ["sizeMiB", "startMiB"])
        if (typeof p[k] === "number" && (p[k] as number) < 0) err(`${pb}.${k}`, "must not be negative");
      if (p.shouldExist === false) {
        if (num === 0) err(`${pb}.number`, "shouldExist: false needs a partition number");
        for (const k of ["label", "typeGuid", "guid", "sizeMiB", "startMiB"])
          if (p[k] !== null && p[k] !== undefined) err(`${pb}.${k}`, `${k} must be unset when shouldExist is false`);
      }
    });
  });

  const raidNames = new Set<string>();
  st.raid?.forEach((r, i) => {
    const base = `$.storage.raid[${i}]`;
    if (raidNames.has(r.name)) err(`${base}.name`, `duplicate raid "${r.name}"`);
    raidNames.add(r.name);
    if (!r.level) err(`${base}.level`, "raid level is required");
    else if (!RAID_LEVELS.includes(r.level)) err(`${base}.level`, `unknown raid level "${r.level}"`);
    if (!r.devices?.length) err(`${base}.devices`, "raid needs at least one device");
    r.devices?.forEach((d, j) => checkAbsClean(`${base}.devices[${j}]`, d, "device"));
    if (r.spares && r.level && ["linear", "raid0", "0", "stripe"].includes(r.level))
      err(`${base}.spares`, `raid level ${r.level} has no spares`);
  });

  const fsDevices = new Set<string>();
  st.filesystems?.forEach((fs, i) => {
    const base = `$.storage.filesystems[${i}]`;
    checkAbsClean(`${base}.device`, fs.device, "device");
    if (fsDevices.has(fs.device)) err(`${base}.device`, `duplicate filesystem device "${fs.device}"`);
    fsDevices.add(fs.device);
    if (fs.format && !FORMATS.includes(fs.format))
      err(`${base}.format`, `format must be one of ${FORMATS.join(", ")}, got "${fs.format}"`);
    checkAbsClean(`${base}.path`, fs.path, "path");
    const needsFormat = ["path", "label", "uuid", "wipeFilesystem", "options", "mountOptions"].filter(
      (k) => !isUnset((fs as Obj)[k]),
    );
    if (!fs.format && needsFormat.length > 0)
      err(`${base}.format`, `format is required when ${needsFormat.join(", ")} is set`);
    const max = fs.format ? LABEL_MAX[fs.format] : undefined;
    if (fs.label && max !== undefined && fs.label.length > max)
      err(`${base}.label`, `${fs.format} labels are at most ${max} characters`);
  });

  const luksNames = new Set<string>();
  st.luks?.forEach((l, i) => {
    const base = `$.storage.luks[${i}]`;
    if (luksNames.has(l.name)) err(`${base}.name`, `duplicate luks device "${l.name}"`);
    luksNames.add(l.name);
    if (l.name.includes("/")) err(`${base}.name`, 'luks name must not contain "/"');
    if (!l.device) err(`${base}.device`, "luks device is required");
    else checkAbsClean(`${base}.device`, l.device, "device");
    checkResource(`${base}.keyFile`, l.keyFile);
    l.clevis?.tang?.forEach((t, j) => {
      checkUrl(`${base}.clevis.tang[${j}].url`, t.url, false);
      if (!t.thumbprint) err(`${base}.clevis.tang[${j}].thumbprint`, "tang thumbprint is required");
    });
    const c = l.clevis;
    if (c && (c.custom?.pin || c.custom?.config) && (c.tpm2 || c.tang?.length))
      err(`${base}.clevis.custom`, "custom clevis excludes tpm2 and tang");
    if (l.cex?.enabled && (l.keyFile?.source || c?.tpm2 || c?.tang?.length))
      err(`${base}.cex`, "cex excludes keyFile and clevis");
  });

  const units = new Set<string>();
  cfg.systemd?.units?.forEach((u, i) => {
    const base = `$.systemd.units[${i}]`;
    if (!UNIT_SUFFIXES.some((s) => u.name.endsWith(s) && u.name.length > s.length))
      err(`${base}.name`, `unit name "${u.name}" needs a unit type suffix (${UNIT_SUFFIXES.join(", ")})`);
    if (u.name.includes("/")) err(`${base}.name`, 'unit name must not contain "/"');
    if (units.has(u.name)) err(`${base}.name`, `duplicate unit "${u.name}"`);
    units.add(u.name);
    const unitError = u.contents ? unitSyntaxError(u.contents) : undefined;
    if (unitError) err(`${base}.contents`, `invalid unit contents: ${unitError}`);
    const dropins = new Set<string>();
    u.dropins?.forEach((d, j) => {
      const dropinError = d.contents ? unitSyntaxError(d.contents) : undefined;
      if (dropinError) err(`${base}.dropins[${j}].contents`, `invalid drop-in contents: ${dropinError}`);
      if (!d.name.endsWith(".conf") || d.name.length <= 5)
        err(`${base}.dropins[${j}].name`, `drop-in name "${d.name}" must end in .conf`);
      if (dropins.has(d.name)) err(`${base}.dropins[${j}].name`, `duplicate drop-in "${d.name}"`);
      dropins.add(d.name);
    });
  });

  const users = new Set<string>();
  cfg.passwd?.users?.forEach((u, i) => {
    if (users.has(u.name)) err(`$.passwd.users[${i}].name`, `duplicate user "${u.name}"`);
    users.add(u.name);
    u.sshAuthorizedKeys?.forEach((k, j) => {
      if (u.sshAuthorizedKeys?.indexOf(k) !== j)
        err(`$.passwd.users[${i}].sshAuthorizedKeys[${j}]`, "duplicate SSH key");
    });
  });
  const groups = new Set<string>();
  cfg.passwd?.groups?.forEach((g, i) => {
    if (groups.has(g.name)) err(`$.passwd.groups[${i}].name`, `duplicate group "${g.name}"`);
    groups.add(g.name);
  });

  const ka = cfg.kernelArguments;
  ka?.shouldExist?.forEach((a, i) => {
    if (ka.shouldNotExist?.includes(a))
      err(`$.kernelArguments.shouldExist[${i}]`, `kernel argument "${a}" is in both shouldExist and shouldNotExist`);
  });
  return out;
}

function truncate(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
