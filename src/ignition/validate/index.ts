import type { Diagnostic } from "../diagnostic.ts";
import { IGNITION, IGNITION_SCHEMAS, isSpec, type Node, SPECS, type Spec } from "../spec.ts";
import type { Check } from "./check.ts";
import { duplicates } from "./dups.ts";
import { RULES } from "./rules.ts";

/**
 * Validates an Ignition config at the spec named by its `ignition.version`: shape first (the zod schema of
 * that spec, derived from spec.ts: types, required fields, no unknown keys), then the rules Ignition itself
 * applies before it touches a disk, walked over the same tree: each object's rules by its Ignition type name
 * (as Ignition's `Validate()` methods), and duplicate entries in its lists (as Ignition's `ValidateDups`).
 * Errors are what Ignition rejects; warnings are what it warns about. Every finding carries the JSON path.
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
  const out: Diagnostic[] = [];
  walk(config, IGNITION, "$", version, out);
  return out;
}

function walk(value: unknown, node: Node, path: string, spec: Spec, out: Diagnostic[]): void {
  if (node.kind === "array" && Array.isArray(value)) {
    value.forEach((v, i) => walk(v, node.of, `${path}[${i}]`, spec, out));
    return;
  }
  if (node.kind !== "object" || value === null || typeof value !== "object") return;
  const o = value as Record<string, unknown>;
  const check: Check = {
    spec,
    path,
    error: (sub, message) => out.push({ severity: "error", path: sub ? `${path}.${sub}` : path, message }),
    warn: (sub, message) => out.push({ severity: "warning", path: sub ? `${path}.${sub}` : path, message }),
  };
  RULES[node.type]?.(o, check);
  duplicates(o, node, check);
  for (const f of node.fields) if (o[f.name] !== undefined) walk(o[f.name], f.node, `${path}.${f.name}`, spec, out);
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
