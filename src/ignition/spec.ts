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

export type Node =
  | { kind: ScalarKind; nullable: boolean }
  | { kind: "object"; fields: Field[]; tag?: Tag }
  | { kind: "array"; of: Node };

export interface Field {
  /** Ignition (camelCase) key. */
  name: string;
  /** Butane key when it is not the plain snake_case of `name`. */
  butane?: string;
  node: Node;
  required?: boolean;
  since?: Spec;
}

const str: Node = { kind: "string", nullable: false };
const nstr: Node = { kind: "string", nullable: true };
const int: Node = { kind: "int", nullable: false };
const nint: Node = { kind: "int", nullable: true };
const nbool: Node = { kind: "bool", nullable: true };
const list = (of: Node): Node => ({ kind: "array", of });
const obj = (fields: Field[], tag?: Tag): Node => (tag ? { kind: "object", fields, tag } : { kind: "object", fields });
const f = (name: string, node: Node, extra: Partial<Field> = {}): Field => ({ name, node, ...extra });

const resource = obj(
  [
    f("source", nstr),
    f("compression", nstr),
    f("httpHeaders", list(obj([f("name", str, { required: true }), f("value", nstr)]))),
    f("verification", obj([f("hash", nstr)])),
  ],
  "resource",
);

const owner = obj([f("id", nint), f("name", nstr)]);
const nodeFields = (): Field[] => [
  f("path", str, { required: true }),
  f("overwrite", nbool),
  f("user", owner),
  f("group", owner),
];

export const IGNITION: Node = obj([
  f(
    "ignition",
    obj([
      f("version", str, { required: true }),
      f("config", obj([f("merge", list(resource)), f("replace", resource)])),
      f("timeouts", obj([f("httpResponseHeaders", nint), f("httpTotal", nint)])),
      f("security", obj([f("tls", obj([f("certificateAuthorities", list(resource))]))])),
      f("proxy", obj([f("httpProxy", nstr), f("httpsProxy", nstr), f("noProxy", list(str))])),
    ]),
    { required: true },
  ),
  f(
    "storage",
    obj(
      [
        f(
          "disks",
          list(
            obj([
              f("device", str, { required: true }),
              f("wipeTable", nbool),
              f(
                "partitions",
                list(
                  obj([
                    f("label", nstr),
                    f("number", int),
                    f("sizeMiB", nint, { butane: "size_mib" }),
                    f("startMiB", nint, { butane: "start_mib" }),
                    f("typeGuid", nstr),
                    f("guid", nstr),
                    f("wipePartitionEntry", nbool),
                    f("shouldExist", nbool),
                    f("resize", nbool),
                  ]),
                ),
              ),
            ]),
          ),
        ),
        f(
          "raid",
          list(
            obj([
              f("name", str, { required: true }),
              f("level", nstr),
              f("devices", list(str)),
              f("spares", nint),
              f("options", list(str)),
            ]),
          ),
        ),
        f(
          "filesystems",
          list(
            obj(
              [
                f("device", str, { required: true }),
                f("format", nstr),
                f("path", nstr),
                f("wipeFilesystem", nbool),
                f("label", nstr),
                f("uuid", nstr),
                f("options", list(str)),
                f("mountOptions", list(str)),
              ],
              "filesystem",
            ),
          ),
        ),
        f("files", list(obj([...nodeFields(), f("mode", nint), f("contents", resource), f("append", list(resource))]))),
        f("directories", list(obj([...nodeFields(), f("mode", nint)]))),
        f("links", list(obj([...nodeFields(), f("target", nstr), f("hard", nbool)]))),
        f(
          "luks",
          list(
            obj(
              [
                f("name", str, { required: true }),
                f("label", nstr),
                f("uuid", nstr),
                f("device", nstr),
                f("keyFile", resource),
                f("wipeVolume", nbool),
                f("options", list(str)),
                f("discard", nbool, { since: "3.4.0" }),
                f("openOptions", list(str), { since: "3.4.0" }),
                f(
                  "clevis",
                  obj([
                    f("custom", obj([f("pin", nstr), f("config", nstr), f("needsNetwork", nbool)])),
                    f("tpm2", nbool),
                    f(
                      "tang",
                      list(
                        obj([
                          f("url", str, { required: true }),
                          f("thumbprint", nstr),
                          f("advertisement", nstr, { since: "3.4.0" }),
                        ]),
                      ),
                    ),
                    f("threshold", nint),
                  ]),
                ),
                f("cex", obj([f("enabled", nbool)]), { since: "3.5.0" }),
              ],
              "luks",
            ),
          ),
        ),
      ],
      "storage",
    ),
  ),
  f(
    "systemd",
    obj([
      f(
        "units",
        list(
          obj(
            [
              f("name", str, { required: true }),
              f("enabled", nbool),
              f("mask", nbool),
              f("contents", nstr),
              f("dropins", list(obj([f("name", str, { required: true }), f("contents", nstr)], "dropin"))),
            ],
            "unit",
          ),
        ),
      ),
    ]),
  ),
  f(
    "passwd",
    obj([
      f(
        "users",
        list(
          obj(
            [
              f("name", str, { required: true }),
              f("passwordHash", nstr),
              f("sshAuthorizedKeys", list(str)),
              f("uid", nint),
              f("gecos", nstr),
              f("homeDir", nstr),
              f("noCreateHome", nbool),
              f("primaryGroup", nstr),
              f("groups", list(str)),
              f("noUserGroup", nbool),
              f("noLogInit", nbool),
              f("shell", nstr),
              f("shouldExist", nbool),
              f("system", nbool),
            ],
            "user",
          ),
        ),
      ),
      f(
        "groups",
        list(
          obj([
            f("name", str, { required: true }),
            f("gid", nint),
            f("passwordHash", nstr),
            f("shouldExist", nbool),
            f("system", nbool),
          ]),
        ),
      ),
    ]),
  ),
  f("kernelArguments", obj([f("shouldExist", list(str)), f("shouldNotExist", list(str))])),
]);

/** Fields that exist in `spec`. */
export function fieldsAt(node: Node & { kind: "object" }, spec: Spec): Field[] {
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
 * Stable output: keys in the spec's field order, nulls dropped (null and absent mean the same to Ignition),
 * so two renders of the same profile are byte-identical and diff well.
 */
export function canonicalize(value: unknown, node: Node = IGNITION): unknown {
  if (value === null || value === undefined) return undefined;
  if (node.kind === "array" && Array.isArray(value)) return value.map((v) => canonicalize(v, node.of) ?? null);
  if (node.kind === "object" && typeof value === "object" && !Array.isArray(value)) {
    const src = value as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const fl of node.fields) {
      const v = canonicalize(src[fl.name], fl.node);
      if (v !== undefined) out[fl.name] = v;
    }
    return out;
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
