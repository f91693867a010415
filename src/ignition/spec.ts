import { z } from "zod";

/**
 * The Ignition 3.x config structure as one annotated tree (3.5.0 superset; `since` marks fields a later spec
 * added). Everything that needs to know the shape — the zod validators per spec, the canonical key order, the
 * down-conversion check and the Butane decoder (which renames keys to snake_case) — is derived from it, so the
 * specs cannot drift apart.
 */
export const SPECS = ["3.3.0", "3.4.0", "3.5.0"] as const;
export type Spec = (typeof SPECS)[number];

export function isSpec(v: unknown): v is Spec {
  return typeof v === "string" && (SPECS as readonly string[]).includes(v);
}

export function specAtMost(a: Spec, b: Spec): boolean {
  return SPECS.indexOf(a) <= SPECS.indexOf(b);
}

export type ScalarKind = "string" | "int" | "bool";
/** Object tags let the Butane layer attach its sugar fields to the right objects. */
export type Tag = "resource" | "filesystem" | "storage" | "unit" | "dropin" | "user" | "luks";

/**
 * Object nodes carry the name of Ignition's Go type (`Resource`, `Partition`, ...): the validation rules are
 * keyed by it, as Ignition's are methods of those types.
 */
export type Node =
  | { kind: ScalarKind; nullable: boolean }
  | { kind: "object"; type: string; fields: Field[]; tag?: Tag }
  | { kind: "array"; of: Node };
export type ObjectNode = Node & { kind: "object" };

export interface Field {
  /** Ignition (camelCase) key. */
  name: string;
  /** Butane key when it is not the plain snake_case of `name`. */
  butane?: string;
  node: Node;
  required?: boolean;
  since?: Spec;
  /** Written out even when empty (Go fields without `omitempty`): required strings. */
  always?: boolean;
  /** A non-pointer Go int with `omitempty`: 0 is not written (partition `number`). */
  omitZero?: boolean;
}

const str: Node = { kind: "string", nullable: false };
const nstr: Node = { kind: "string", nullable: true };
const int: Node = { kind: "int", nullable: false };
const nint: Node = { kind: "int", nullable: true };
const nbool: Node = { kind: "bool", nullable: true };
const list = (of: Node): Node => ({ kind: "array", of });
const obj = (type: string, fields: Field[], tag?: Tag): ObjectNode =>
  tag ? { kind: "object", type, fields, tag } : { kind: "object", type, fields };
const f = (name: string, node: Node, extra: Partial<Field> = {}): Field => ({ name, node, ...extra });
/** A required string that Ignition's Go types always write (no `omitempty`). */
const key = (name: string): Field => f(name, str, { required: true, always: true });

// Fields are listed in the order of Ignition's Go types (alphabetical by Go name, a node's path/user/group/
// overwrite before the file/directory/link fields), which is the order Butane and Ignition write JSON in.
const resource = obj(
  "Resource",
  [
    f("compression", nstr),
    f("httpHeaders", list(obj("HTTPHeader", [key("name"), f("value", nstr)]))),
    f("source", nstr),
    f("verification", obj("Verification", [f("hash", nstr)])),
  ],
  "resource",
);

const nodeFields = (): Field[] => [
  f("group", obj("NodeGroup", [f("id", nint), f("name", nstr)])),
  f("overwrite", nbool),
  key("path"),
  f("user", obj("NodeUser", [f("id", nint), f("name", nstr)])),
];

export const IGNITION: ObjectNode = obj("Config", [
  f(
    "ignition",
    obj("Ignition", [
      f("config", obj("IgnitionConfig", [f("merge", list(resource)), f("replace", resource)])),
      f("proxy", obj("Proxy", [f("httpProxy", nstr), f("httpsProxy", nstr), f("noProxy", list(str))])),
      f("security", obj("Security", [f("tls", obj("TLS", [f("certificateAuthorities", list(resource))]))])),
      f("timeouts", obj("Timeouts", [f("httpResponseHeaders", nint), f("httpTotal", nint)])),
      key("version"),
    ]),
    { required: true, always: true },
  ),
  f("kernelArguments", obj("KernelArguments", [f("shouldExist", list(str)), f("shouldNotExist", list(str))])),
  f(
    "passwd",
    obj("Passwd", [
      f(
        "groups",
        list(
          obj("PasswdGroup", [
            f("gid", nint),
            key("name"),
            f("passwordHash", nstr),
            f("shouldExist", nbool),
            f("system", nbool),
          ]),
        ),
      ),
      f(
        "users",
        list(
          obj(
            "PasswdUser",
            [
              f("gecos", nstr),
              f("groups", list(str)),
              f("homeDir", nstr),
              key("name"),
              f("noCreateHome", nbool),
              f("noLogInit", nbool),
              f("noUserGroup", nbool),
              f("passwordHash", nstr),
              f("primaryGroup", nstr),
              f("sshAuthorizedKeys", list(str)),
              f("shell", nstr),
              f("shouldExist", nbool),
              f("system", nbool),
              f("uid", nint),
            ],
            "user",
          ),
        ),
      ),
    ]),
  ),
  f(
    "storage",
    obj(
      "Storage",
      [
        f("directories", list(obj("Directory", [...nodeFields(), f("mode", nint)]))),
        f(
          "disks",
          list(
            obj("Disk", [
              key("device"),
              f(
                "partitions",
                list(
                  obj("Partition", [
                    f("guid", nstr),
                    f("label", nstr),
                    f("number", int, { omitZero: true }),
                    f("resize", nbool),
                    f("shouldExist", nbool),
                    f("sizeMiB", nint, { butane: "size_mib" }),
                    f("startMiB", nint, { butane: "start_mib" }),
                    f("typeGuid", nstr),
                    f("wipePartitionEntry", nbool),
                  ]),
                ),
              ),
              f("wipeTable", nbool),
            ]),
          ),
        ),
        f(
          "files",
          list(obj("File", [...nodeFields(), f("append", list(resource)), f("contents", resource), f("mode", nint)])),
        ),
        f(
          "filesystems",
          list(
            obj(
              "Filesystem",
              [
                key("device"),
                f("format", nstr),
                f("label", nstr),
                f("mountOptions", list(str)),
                f("options", list(str)),
                f("path", nstr),
                f("uuid", nstr),
                f("wipeFilesystem", nbool),
              ],
              "filesystem",
            ),
          ),
        ),
        f("links", list(obj("Link", [...nodeFields(), f("hard", nbool), f("target", nstr)]))),
        f(
          "luks",
          list(
            obj(
              "Luks",
              [
                f("cex", obj("Cex", [f("enabled", nbool)]), { since: "3.5.0" }),
                f(
                  "clevis",
                  obj("Clevis", [
                    f("custom", obj("ClevisCustom", [f("config", nstr), f("needsNetwork", nbool), f("pin", nstr)])),
                    f(
                      "tang",
                      list(
                        obj("Tang", [
                          f("advertisement", nstr, { since: "3.4.0" }),
                          f("thumbprint", nstr),
                          f("url", str, { required: true }),
                        ]),
                      ),
                    ),
                    f("threshold", nint),
                    f("tpm2", nbool),
                  ]),
                ),
                f("device", nstr),
                f("discard", nbool, { since: "3.4.0" }),
                f("keyFile", resource),
                f("label", nstr),
                key("name"),
                f("openOptions", list(str), { since: "3.4.0" }),
                f("options", list(str)),
                f("uuid", nstr),
                f("wipeVolume", nbool),
              ],
              "luks",
            ),
          ),
        ),
        f(
          "raid",
          list(
            obj("Raid", [
              f("devices", list(str)),
              f("level", nstr),
              key("name"),
              f("options", list(str)),
              f("spares", nint),
            ]),
          ),
        ),
      ],
      "storage",
    ),
  ),
  f(
    "systemd",
    obj("Systemd", [
      f(
        "units",
        list(
          obj(
            "Unit",
            [
              f("contents", nstr),
              f("dropins", list(obj("Dropin", [f("contents", nstr), key("name")], "dropin"))),
              f("enabled", nbool),
              f("mask", nbool),
              key("name"),
            ],
            "unit",
          ),
        ),
      ),
    ]),
  ),
]);

/** Fields that exist in `spec`. */
export function fieldsAt(node: ObjectNode, spec: Spec): Field[] {
  return node.fields.filter((fl) => fl.since === undefined || specAtMost(fl.since, spec));
}

function zodFor(node: Node, spec: Spec): z.ZodType {
  switch (node.kind) {
    case "string":
      return node.nullable ? z.string().nullable() : z.string();
    case "int":
      return node.nullable ? z.number().int().nullable() : z.number().int();
    case "bool":
      return node.nullable ? z.boolean().nullable() : z.boolean();
    case "array":
      return z.array(zodFor(node.of, spec));
    case "object": {
      const shape: Record<string, z.ZodType> = {};
      for (const fl of fieldsAt(node, spec))
        shape[fl.name] = fl.required ? zodFor(fl.node, spec) : zodFor(fl.node, spec).optional();
      return z.strictObject(shape);
    }
  }
}

/** Shape validators (types, required fields, no unknown keys) for each supported spec. */
export const IGNITION_SCHEMAS: Record<Spec, z.ZodType> = {
  "3.3.0": zodFor(IGNITION, "3.3.0"),
  "3.4.0": zodFor(IGNITION, "3.4.0"),
  "3.5.0": zodFor(IGNITION, "3.5.0"),
};

/**
 * Stable output, as Ignition's Go types marshal (and so as Butane writes): keys in the Go field order, and
 * nothing written for null, an empty list, an object with nothing set or a zero partition number; required
 * strings are always written. Two renders of one profile are byte-identical and diff well.
 */
export function canonicalize(value: unknown, node: Node = IGNITION): unknown {
  if (value === null || value === undefined) return undefined;
  if (node.kind === "array" && Array.isArray(value)) {
    if (value.length === 0) return undefined;
    return value.map((v) => canonicalize(v, node.of) ?? (node.of.kind === "object" ? {} : null));
  }
  if (node.kind === "object" && typeof value === "object" && !Array.isArray(value)) {
    const src = value as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const fl of node.fields) {
      let v = canonicalize(src[fl.name], fl.node);
      if (v === undefined && fl.always && fl.node.kind === "object") v = canonicalize({}, fl.node) ?? {};
      if (v === undefined || (fl.omitZero && v === 0)) continue;
      out[fl.name] = v;
    }
    return Object.keys(out).length === 0 && node !== IGNITION ? undefined : out;
  }
  return value;
}

/** A field that is set in `config` but only exists in a spec newer than `target`. */
export interface NewerField {
  path: string;
  since: Spec;
}

export function fieldsNewerThan(config: unknown, target: Spec, node: Node = IGNITION, path = "$"): NewerField[] {
  const found: NewerField[] = [];
  if (node.kind === "array" && Array.isArray(config)) {
    config.forEach((v, i) => found.push(...fieldsNewerThan(v, target, node.of, `${path}[${i}]`)));
  } else if (node.kind === "object" && config !== null && typeof config === "object") {
    const src = config as Record<string, unknown>;
    for (const fl of node.fields) {
      const v = src[fl.name];
      if (isUnset(v)) continue;
      const p = `${path}.${fl.name}`;
      if (fl.since !== undefined && !specAtMost(fl.since, target)) found.push({ path: p, since: fl.since });
      else found.push(...fieldsNewerThan(v, target, fl.node, p));
    }
  }
  return found;
}

/** Null, absent, empty list or an object with nothing set: Ignition treats all of them as "not configured". */
export function isUnset(v: unknown): boolean {
  if (v === null || v === undefined) return true;
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === "object") return Object.values(v).every(isUnset);
  return false;
}

/** Drop fields newer than `target` that are unset (e.g. `"discard": null`) so the result is strictly `target`-shaped. */
export function pruneNewer(config: unknown, target: Spec, node: Node = IGNITION): unknown {
  if (node.kind === "array" && Array.isArray(config)) return config.map((v) => pruneNewer(v, target, node.of));
  if (node.kind === "object" && config !== null && typeof config === "object" && !Array.isArray(config)) {
    const src = config as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(src)) {
      const fl = node.fields.find((x) => x.name === k);
      if (!fl) out[k] = v;
      else if (fl.since !== undefined && !specAtMost(fl.since, target)) continue;
      else out[k] = pruneNewer(v, target, fl.node);
    }
    return out;
  }
  return config;
}
