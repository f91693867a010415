import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { isMap, isScalar } from "yaml";
import { encodeContents } from "./dataurl.ts";
import { decodeDocument, parseYaml, posOf } from "./decode.ts";
import type { Diagnostic } from "./diagnostic.ts";
import { checkChildConfig } from "./json.ts";
import { localPath } from "./local.ts";
import { desugarMountUnits } from "./mount-units.ts";
import type { Parsed, Sugar } from "./parsed.ts";
import { type Field, fieldsAt, IGNITION, type Node, type ObjectNode, type Spec, specAtMost, type Tag } from "./spec.ts";
import { literalTemplater, type Templater } from "./template.ts";
import { desugarTrees } from "./trees.ts";

/**
 * Butane (`variant: flatcar`) → Ignition. The Butane document is decoded against the Ignition spec tree with
 * snake_case keys plus Butane's sugar fields, then the sugar is desugared: inline/local contents become data
 * URLs, trees become files and links, `with_mount_unit` becomes a unit, `*_local` fields are read from
 * `filesDir`. The result is what Butane 0.29 writes for the same document (docs/ignition.md lists the few
 * places where Kindling refuses more, and why).
 */
export const FLATCAR_VERSIONS: Record<string, Spec> = { "1.0.0": "3.3.0", "1.1.0": "3.4.0" };

export interface ButaneOptions {
  strict?: boolean;
  filesDir?: string;
  templater?: Templater;
}

const s = (nullable = true): Node => ({ kind: "string", nullable });
const EXTRAS: Record<Tag, { field: Field; since?: Spec }[]> = {
  resource: [{ field: { name: "inline", node: s() } }, { field: { name: "local", node: s() } }],
  filesystem: [{ field: { name: "withMountUnit", node: { kind: "bool", nullable: true } } }],
  storage: [
    {
      field: {
        name: "trees",
        node: {
          kind: "array",
          of: {
            kind: "object",
            type: "Tree",
            fields: [
              { name: "local", node: s(false), required: true },
              { name: "path", node: s() },
            ],
          },
        },
      },
    },
  ],
  unit: [{ field: { name: "contentsLocal", node: s() }, since: "3.4.0" }],
  dropin: [{ field: { name: "contentsLocal", node: s() }, since: "3.4.0" }],
  user: [{ field: { name: "sshAuthorizedKeysLocal", node: { kind: "array", of: s(false) } }, since: "3.4.0" }],
  luks: [],
};
/** Ignition fields the flatcar variant leaves out (Flatcar has no clevis pins; cex arrives with 1.2.0-experimental). */
const FLATCAR_DROPS: Partial<Record<Tag, string[]>> = { luks: ["clevis", "cex"] };
const IGNITION_SECTION = IGNITION.fields.find((f) => f.name === "ignition")?.node;

function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}
const butaneKey = (f: Field): string => f.butane ?? snake(f.name);

function butaneFields(node: ObjectNode, spec: Spec): Field[] {
  let fields = fieldsAt(node, spec);
  // Butane has variant/version at the top and no ignition.version (the translator sets it), so `ignition` is optional.
  if (node === IGNITION)
    fields = [
      { name: "variant", node: s(false) },
      { name: "version", node: s(false) },
      ...fields.map((f) => ({ ...f, required: false })),
    ];
  if (node === IGNITION_SECTION) fields = fields.filter((f) => f.name !== "version");
  if (node.tag) {
    const drops = FLATCAR_DROPS[node.tag] ?? [];
    fields = fields.filter((f) => !drops.includes(f.name));
    for (const x of EXTRAS[node.tag]) if (!x.since || specAtMost(x.since, spec)) fields.push(x.field);
  }
  return fields;
}

/** Parses and desugars a Butane document; diagnostics are returned, not thrown. */
/**
 * Characters refused in a document: those Butane's YAML reader refuses (C0/C1 controls, DEL, U+FFFE/F), and
 * NEL, LS and PS written raw, which YAML 1.1 (Butane) reads as line breaks and YAML 1.2 as text: the document
 * would mean different things to the two. Escaped in a double-quoted string, all of them are fine.
 */
const NOT_YAML = /[^\t\n\r\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/u;

export function parseButane(text: string, opts: ButaneOptions = {}): Parsed | { diagnostics: Diagnostic[] } {
  const bad = NOT_YAML.exec(text);
  if (bad) {
    const before = text.slice(0, bad.index).split("\n");
    const code = (bad[0].codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0");
    return {
      diagnostics: [
        {
          severity: "error",
          message: `character U+${code} may not be written raw in a Butane document (escape it in a double-quoted string: "\\u${code}")`,
          line: before.length,
          column: (before[before.length - 1]?.length ?? 0) + 1,
        },
      ],
    };
  }
  const { doc, lc, diagnostics, text: read } = parseYaml(text, { butane: true });
  if (diagnostics.some((d) => d.severity === "error")) return { diagnostics };
  const root = doc.contents;
  if (!isMap(root))
    return {
      diagnostics: [
        { severity: "error", message: "a Butane config is a YAML map with variant and version", line: 1, column: 1 },
      ],
    };
  const header = (key: string) => {
    const pair = root.items.find((p) => isScalar(p.key) && p.key.value === key);
    return {
      value: pair && isScalar(pair.value) ? pair.value.value : undefined,
      pos: posOf(lc, pair?.value ?? pair?.key ?? root),
    };
  };
  const variant = header("variant");
  const version = header("version");
  if (variant.value !== "flatcar") {
    const message =
      variant.value === undefined
        ? 'missing "variant: flatcar"'
        : `variant "${String(variant.value)}" is not supported; Kindling translates variant flatcar`;
    return { diagnostics: [{ severity: "error", path: "$.variant", message, ...variant.pos }] };
  }
  const spec = typeof version.value === "string" ? FLATCAR_VERSIONS[version.value] : undefined;
  if (!spec) {
    const message =
      version.value === "1.2.0-experimental"
        ? "flatcar 1.2.0-experimental targets Ignition 3.7.0-experimental, which no released Flatcar accepts; use version 1.1.0 (Ignition 3.4.0) or 1.0.0 (3.3.0)"
        : `flatcar version ${JSON.stringify(version.value ?? null)} is not supported; use 1.0.0 (Ignition 3.3.0) or 1.1.0 (Ignition 3.4.0)`;
    return { diagnostics: [{ severity: "error", path: "$.version", message, ...version.pos }] };
  }
  const decoded = decodeDocument(doc, lc, root, IGNITION, {
    fieldsOf: (n) => butaneFields(n, spec),
    refusedKey: (n, key) => {
      if (
        (n === IGNITION && ["boot_device", "grub"].includes(key)) ||
        (n.tag && FLATCAR_DROPS[n.tag]?.some((d) => snake(d) === key))
      ) {
        return `"${key}" is not supported by the flatcar variant`;
      }
      const later = [...n.fields, ...(n.tag ? EXTRAS[n.tag].map((x) => ({ ...x.field, since: x.since })) : [])].find(
        (f) => butaneKey(f) === key && f.since && !specAtMost(f.since, spec),
      );
      const butaneVersion = Object.entries(FLATCAR_VERSIONS).find(([, sp]) => sp === later?.since)?.[0];
      return later
        ? `"${key}" needs ${butaneVersion ? `flatcar ${butaneVersion}` : `Ignition ${later.since}`}; this document is flatcar ${String(version.value)}`
        : undefined;
    },
    keyOf: butaneKey,
    butane: true,
    text: read,
    strict: opts.strict ?? false,
    templater: opts.templater ?? literalTemplater,
  });
  const all = [...diagnostics, ...decoded.diagnostics];
  if (all.some((d) => d.severity === "error")) return { diagnostics: all };
  const config = (decoded.value ?? {}) as Record<string, unknown>;
  delete config.variant;
  delete config.version;
  const errors: Diagnostic[] = [];
  const fail = (path: string, message: string) =>
    errors.push({ severity: "error", path, message, ...decoded.positions.get(path) });
  const warn = (path: string, message: string) =>
    errors.push({ severity: "warning", path, message, ...decoded.positions.get(path) });
  desugar(config, { filesDir: opts.filesDir, spec, fail, warn });
  const ignition = (config.ignition ?? {}) as Record<string, unknown>;
  config.ignition = { ...ignition, version: spec };
  return { config, spec, diagnostics: [...all, ...errors], positions: decoded.positions, templated: decoded.templated };
}

type Obj = Record<string, unknown>;

/** Calls `fn` for every object in `value` whose spec node carries a tag, depth first. */
function visitTagged(value: unknown, node: Node, path: string, fn: (tag: Tag, obj: Obj, path: string) => void): void {
  if (node.kind === "array" && Array.isArray(value))
    value.forEach((v, i) => visitTagged(v, node.of, `${path}[${i}]`, fn));
  if (node.kind === "object" && value && typeof value === "object" && !Array.isArray(value)) {
    const o = value as Obj;
    for (const f of node.fields) if (o[f.name] !== undefined) visitTagged(o[f.name], f.node, `${path}.${f.name}`, fn);
    if (node.tag) fn(node.tag, o, path);
  }
}

function desugar(config: Obj, sg: Sugar): void {
  const readLocal = (rel: string, path: string): Buffer | undefined => {
    const file = localPath(rel, path, sg);
    if (!file) return undefined;
    try {
      return readFileSync(file);
    } catch (e) {
      sg.fail(path, `cannot read local file "${rel}": ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      return undefined;
    }
  };
  visitTagged(config, IGNITION, "$", (tag, o, path) => {
    switch (tag) {
      case "resource":
        return desugarResource(o, path, readLocal, sg);
      case "unit":
      case "dropin":
        if (o.contentsLocal !== undefined && o.contentsLocal !== null) {
          if (o.contents !== undefined && o.contents !== null)
            sg.fail(`${path}.contentsLocal`, "only one of the following can be set: contents, contents_local");
          else if (o.contentsLocal !== "")
            o.contents = readLocal(String(o.contentsLocal), `${path}.contentsLocal`)?.toString("utf8");
        }
        delete o.contentsLocal;
        return;
      case "user": {
        const locals = o.sshAuthorizedKeysLocal as string[] | undefined;
        if (locals?.length) {
          const keys = [...((o.sshAuthorizedKeys as string[] | undefined) ?? [])];
          locals.forEach((rel, i) => {
            const text = readLocal(rel, `${path}.sshAuthorizedKeysLocal[${i}]`)?.toString("utf8") ?? "";
            // One key a line; only empty lines are skipped (as Butane does: a blank-looking line is a key).
            keys.push(...text.split(/\r?\n/).filter((l) => l !== ""));
          });
          o.sshAuthorizedKeys = keys;
        }
        delete o.sshAuthorizedKeysLocal;
        return;
      }
      case "filesystem":
        return checkMountUnit(o, path, sg);
      case "storage":
        return desugarTrees(o, path, sg);
      default:
        return;
    }
  });
  desugarMountUnits(config);
  warnDecimalModes(config, sg);
}

/** Butane's own checks of `with_mount_unit`, before any unit is generated. */
function checkMountUnit(fs: Obj, path: string, sg: Sugar): void {
  if (fs.withMountUnit !== true) return;
  if (typeof fs.format !== "string" || fs.format === "")
    sg.fail(`${path}.withMountUnit`, "format is required if with_mount_unit is true");
  else if (fs.format !== "swap" && (typeof fs.path !== "string" || fs.path === ""))
    sg.fail(`${path}.withMountUnit`, "path is required if with_mount_unit is true and format is not swap");
}

function desugarResource(
  o: Obj,
  path: string,
  readLocal: (rel: string, path: string) => Buffer | undefined,
  sg: Sugar,
): void {
  const given = ["local", "inline", "source"].filter((k) => o[k] !== undefined && o[k] !== null);
  if (given.length > 1) {
    sg.fail(`${path}.${given[given.length - 1]}`, "only one of the following can be set: inline, local, source");
    return;
  }
  const inline = o.inline;
  const local = o.local;
  delete o.inline;
  delete o.local;
  const kind =
    inline !== undefined && inline !== null ? "inline" : local !== undefined && local !== null ? "local" : "";
  if (!kind) return;
  const data =
    kind === "inline"
      ? Buffer.isBuffer(inline)
        ? inline
        : Buffer.from(String(inline), "utf8")
      : readLocal(String(local), `${path}.local`);
  if (!data) return;
  const compression = typeof o.compression === "string" ? o.compression : "";
  // Given a compression, the contents are already compressed: they are encoded as they are. Ignition would fail
  // the boot decompressing anything else, so contents that are not gzip data are refused here.
  if (compression === "gzip" && !(data[0] === 0x1f && data[1] === 0x8b))
    sg.fail(`${path}.${kind}`, `compression is gzip but the ${kind} contents are not gzip data`);
  if (compression === "") checkHash(o, path, data, kind, sg);
  if (path.startsWith("$.ignition.config.")) checkChildConfig(data, `${path}.${kind}`, sg, kind === "inline");
  Object.assign(o, encodeContents(data, compression === ""));
  if (compression !== "") o.compression = compression;
}

/**
 * A hash next to inline/local contents must match them: Ignition checks it at boot and would fail there.
 * Hex digits are compared in either case (Ignition decodes them).
 */
function checkHash(o: Obj, path: string, data: Buffer, kind: string, sg: Sugar): void {
  const hash = (o.verification as Obj | undefined)?.hash;
  if (typeof hash !== "string") return;
  const [algo, digest] = hash.split("-", 2);
  if ((algo === "sha512" || algo === "sha256") && digest?.toLowerCase() !== createHash(algo).update(data).digest("hex"))
    sg.fail(`${path}.verification.hash`, `hash does not match the ${kind} contents`);
}

/** Butane warns about a mode that looks like octal digits written as a decimal number (`mode: 644`). */
function warnDecimalModes(config: Obj, sg: Sugar): void {
  const storage = (config.storage ?? {}) as Record<string, Obj[] | undefined>;
  for (const kind of ["files", "directories"] as const)
    storage[kind]?.forEach((n, i) => {
      if (typeof n.mode === "number" && looksDecimal(n.mode, kind === "directories"))
        sg.warn(
          `$.storage.${kind}[${i}].mode`,
          "unreasonable mode would be reasonable if specified in octal; remember to add a leading zero",
        );
    });
}

function looksDecimal(mode: number, directory: boolean): boolean {
  if (mode < 0 || mode > 7777) return false;
  const digits = String(mode).padStart(4, "0");
  if (/[89]/.test(digits)) return false;
  return !typicalMode(mode, directory) && typicalMode(Number.parseInt(digits, 8), directory);
}

/** Butane's notion of an unsurprising mode: permissions nest (u ⊇ g ⊇ o), someone can read, sane special bits. */
function typicalMode(mode: number, directory: boolean): boolean {
  if (mode === 0) return true;
  let hadR = false;
  let hadW = false;
  let hadX = false;
  for (const perm of [mode & 7, (mode >> 3) & 7, (mode >> 6) & 7]) {
    const r = (perm & 4) !== 0;
    const w = (perm & 2) !== 0;
    const x = (perm & 1) !== 0;
    if ((!r && hadR) || (!w && hadW) || (!x && hadX)) return false;
    if (x && hadR && !hadX) return false;
    if ((w || x) && !r) return false;
    hadR ||= r;
    hadW ||= w;
    hadX ||= x;
  }
  if (!hadR) return false;
  if (directory) return hadX && !(mode & 0o4000) && !(mode & 0o3000 && !hadW);
  if (mode & 0o6000 && (!hadX || mode & 2)) return false;
  return !(mode & 0o1000);
}
