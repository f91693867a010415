import type { ObjectNode } from "../spec.ts";
import type { Check } from "./check.ts";

type Obj = Record<string, unknown>;

/**
 * Ignition's `ValidateDups`: within one object, no two entries of a list may share a key. Files, directories
 * and links share one list (a path is one node), as do `shouldExist` and `shouldNotExist`; lists of options
 * and file appends may repeat.
 */
const SHARED: Record<string, Record<string, string>> = {
  Storage: { files: "node", directories: "node", links: "node" },
  KernelArguments: { shouldExist: "karg", shouldNotExist: "karg" },
};
const IGNORED: Record<string, string[]> = {
  File: ["append"],
  Filesystem: ["options", "mountOptions"],
  Luks: ["options"],
  Raid: ["options"],
};

/** The key Ignition identifies an entry by (its `Key()` method; strings are their own key). */
function keyOf(type: string | undefined, v: unknown): string {
  if (typeof v === "string") return v;
  const o = (v ?? {}) as Obj;
  const s = (k: string) => (typeof o[k] === "string" ? (o[k] as string) : "");
  switch (type) {
    case "Resource":
      return s("source");
    case "Partition":
      if (typeof o.number === "number" && o.number !== 0) return `number:${o.number}`;
      return typeof o.label === "string" ? `label:${o.label}` : "";
    case "Disk":
    case "Filesystem":
      return s("device");
    case "Tang":
      return s("url");
    case "HTTPHeader":
    case "Luks":
    case "Raid":
    case "Unit":
    case "Dropin":
    case "PasswdUser":
    case "PasswdGroup":
      return s("name");
    default:
      return s("path");
  }
}

export function duplicates(o: Obj, node: ObjectNode, check: Check): void {
  const seen = new Map<string, Map<string, string>>();
  for (const f of node.fields) {
    const list = o[f.name];
    if (f.node.kind !== "array" || !Array.isArray(list) || IGNORED[node.type]?.includes(f.name)) continue;
    const group = SHARED[node.type]?.[f.name] ?? f.name;
    const keys = seen.get(group) ?? new Map<string, string>();
    seen.set(group, keys);
    const type = f.node.of.kind === "object" ? f.node.of.type : undefined;
    list.forEach((v, i) => {
      const k = keyOf(type, v);
      const first = keys.get(k);
      if (first !== undefined)
        check.error(
          `${f.name}[${i}]`,
          `duplicate entry${k ? ` ${JSON.stringify(k)}` : ""} (also at ${check.path}.${first})`,
        );
      else keys.set(k, `${f.name}[${i}]`);
    });
  }
}
