import { createHash } from "node:crypto";
import { lstatSync, readdirSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { isAbsolute, posix, relative, resolve, sep } from "node:path";
import { isMap, isScalar } from "yaml";
import { encodeContents } from "./dataurl.ts";
import { decodeDocument, type Pos, parseYaml, posOf } from "./decode.ts";
import type { Diagnostic } from "./diagnostic.ts";
import { type Field, fieldsAt, IGNITION, type Node, type Spec, specAtMost, type Tag } from "./spec.ts";
import { systemdEscapePath } from "./systemd-escape.ts";
import { literalTemplater, type Templater } from "./template.ts";

/**
 * Butane (`variant: flatcar`) → Ignition. The Butane document is decoded against the Ignition spec tree with
 * snake_case keys plus Butane's sugar fields, then the sugar is desugared: inline/local contents become data
 * URLs, trees become files and links, `with_mount_unit` becomes a unit, `*_local` fields are read from
 * `filesDir`.
 */
export const FLATCAR_VERSIONS: Record<string, Spec> = { "1.0.0": "3.3.0", "1.1.0": "3.4.0" };

export interface Parsed {
  config: Record<string, unknown>;
  spec: Spec;
  diagnostics: Diagnostic[];
  positions: Map<string, Pos>;
  templated: Set<string>;
}

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
const IGNITION_SECTION = (IGNITION as Node & { kind: "object" }).fields.find((f) => f.name === "ignition")?.node;

function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}
const butaneKey = (f: Field): string => f.butane ?? snake(f.name);

function butaneFields(node: Node & { kind: "object" }, spec: Spec): Field[] {
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
export function parseButane(text: string, opts: ButaneOptions = {}): Parsed | { diagnostics: Diagnostic[] } {
  const { doc, lc, diagnostics } = parseYaml(text);
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
  desugar(config, { filesDir: opts.filesDir, fail });
  const ignition = (config.ignition ?? {}) as Record<string, unknown>;
  config.ignition = { ...ignition, version: spec };
  return { config, spec, diagnostics: [...all, ...errors], positions: decoded.positions, templated: decoded.templated };
}

interface Sugar {
  filesDir: string | undefined;
  fail(path: string, message: string): void;
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
            sg.fail(`${path}.contentsLocal`, "contents and contents_local are mutually exclusive");
          else o.contents = readLocal(String(o.contentsLocal), `${path}.contentsLocal`)?.toString("utf8");
        }
        delete o.contentsLocal;
        return;
      case "user": {
        const locals = o.sshAuthorizedKeysLocal as string[] | undefined;
        if (locals?.length) {
          const keys = [...((o.sshAuthorizedKeys as string[] | undefined) ?? [])];
          locals.forEach((rel, i) => {
            const text = readLocal(rel, `${path}.sshAuthorizedKeysLocal[${i}]`)?.toString("utf8") ?? "";
            keys.push(...text.split(/\r?\n/).filter((l) => l.trim() !== ""));
          });
          o.sshAuthorizedKeys = keys;
        }
        delete o.sshAuthorizedKeysLocal;
        return;
      }
      case "storage":
        desugarTrees(o, path, sg);
        return;
      default:
        return;
    }
  });
  desugarMountUnits(config, sg);
}

function localPath(rel: string, path: string, sg: Sugar): string | undefined {
  if (!sg.filesDir) {
    sg.fail(path, `"${rel}" is a local file, which needs a files directory (--files-dir)`);
    return undefined;
  }
  const base = resolve(sg.filesDir);
  const file = resolve(base, rel);
  const r = relative(base, file);
  if (isAbsolute(rel) || r.startsWith("..") || isAbsolute(r)) {
    sg.fail(path, `local path "${rel}" is outside the files directory`);
    return undefined;
  }
  return file;
}

function desugarResource(
  o: Obj,
  path: string,
  readLocal: (rel: string, path: string) => Buffer | undefined,
  sg: Sugar,
): void {
  const given = ["source", "inline", "local"].filter((k) => o[k] !== undefined && o[k] !== null);
  if (given.length > 1) {
    sg.fail(`${path}.${given[1]}`, `${given.join(", ")} are mutually exclusive`);
    return;
  }
  const inline = o.inline;
  const local = o.local;
  delete o.inline;
  delete o.local;
  if (typeof inline !== "string" && typeof local !== "string") return;
  if (o.compression !== undefined && o.compression !== null) {
    sg.fail(
      `${path}.compression`,
      "compression must be left out with inline/local contents: the translator compresses when that is shorter",
    );
    return;
  }
  const data = typeof inline === "string" ? Buffer.from(inline, "utf8") : readLocal(local as string, `${path}.local`);
  if (!data) return;
  const hash = (o.verification as Obj | undefined)?.hash;
  if (typeof hash === "string") {
    const [algo, digest] = hash.split("-", 2);
    if ((algo === "sha512" || algo === "sha256") && digest !== createHash(algo).update(data).digest("hex")) {
      sg.fail(
        `${path}.verification.hash`,
        `hash does not match the ${typeof inline === "string" ? "inline" : "local"} contents`,
      );
    }
  }
  Object.assign(o, encodeContents(data));
}

function desugarTrees(storage: Obj, path: string, sg: Sugar): void {
  const trees = storage.trees as { local: string; path?: string | null }[] | undefined;
  delete storage.trees;
  if (!trees?.length) return;
  const files = ((storage.files as Obj[] | undefined) ?? []).slice();
  const links = ((storage.links as Obj[] | undefined) ?? []).slice();
  trees.forEach((tree, i) => {
    const tp = `${path}.trees[${i}]`;
    const dir = localPath(tree.local, `${tp}.local`, sg);
    if (!dir) return;
    try {
      if (!statSync(dir).isDirectory()) return sg.fail(`${tp}.local`, `"${tree.local}" is not a directory`);
    } catch (e) {
      return sg.fail(
        `${tp}.local`,
        `cannot read tree "${tree.local}": ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      );
    }
    const walk = (abs: string, rel: string) => {
      for (const name of readdirSync(abs).sort()) {
        const a = `${abs}${sep}${name}`;
        const r = rel ? `${rel}/${name}` : name;
        const target = posix.join(tree.path ?? "/", r);
        const st = lstatSync(a);
        if (st.isDirectory()) walk(a, r);
        else if (st.isFile()) {
          const contents = encodeContents(readFileSync(a));
          const mode = st.mode & 0o111 ? 0o755 : 0o644;
          const existing = files.find((f) => f.path === target);
          if (!existing) files.push({ path: target, contents, mode });
          else if ((existing.contents as Obj | undefined)?.source)
            sg.fail(`${tp}.local`, `tree file "${r}" conflicts with the files entry for ${target}, which has contents`);
          else {
            existing.contents = contents;
            existing.mode ??= mode;
          }
        } else if (st.isSymbolicLink()) {
          const existing = links.find((l) => l.path === target);
          if (!existing) links.push({ path: target, target: readlinkSync(a) });
          else if (existing.target)
            sg.fail(`${tp}.local`, `tree link "${r}" conflicts with the links entry for ${target}, which has a target`);
          else existing.target = readlinkSync(a);
        } else sg.fail(`${tp}.local`, `tree entry "${r}" is neither a file, a directory nor a symlink`);
      }
    };
    walk(dir, "");
  });
  if (files.length) storage.files = files;
  if (links.length) storage.links = links;
}

function desugarMountUnits(config: Obj, sg: Sugar): void {
  const storage = config.storage as Obj | undefined;
  const filesystems = (storage?.filesystems as Obj[] | undefined) ?? [];
  const generated: Obj[] = [];
  filesystems.forEach((fs, i) => {
    const want = fs.withMountUnit;
    delete fs.withMountUnit;
    if (want !== true) return;
    const path = `$.storage.filesystems[${i}].withMountUnit`;
    const device = String(fs.device);
    const format = fs.format as string | null | undefined;
    if (format === "swap") {
      generated.push({
        name: `${systemdEscapePath(device)}.swap`,
        enabled: true,
        contents: `# Generated by Kindling\n[Swap]\nWhat=${device}\n\n[Install]\nRequiredBy=swap.target\n`,
      });
      return;
    }
    const where = fs.path as string | null | undefined;
    if (!where) return sg.fail(path, "with_mount_unit needs path (or format: swap)");
    if (!format || format === "none") return sg.fail(path, "with_mount_unit needs a filesystem format");
    const dev = systemdEscapePath(device);
    const options = (fs.mountOptions as string[] | undefined) ?? [];
    generated.push({
      name: `${systemdEscapePath(where)}.mount`,
      enabled: true,
      contents:
        "# Generated by Kindling\n[Unit]\nBefore=local-fs.target\n" +
        `Requires=systemd-fsck@${dev}.service\nAfter=systemd-fsck@${dev}.service\n\n` +
        `[Mount]\nWhere=${where}\nWhat=${device}\nType=${format}\n` +
        (options.length ? `Options=${options.join(",")}\n` : "") +
        "\n[Install]\nRequiredBy=local-fs.target\n",
    });
  });
  if (!generated.length) return;
  const systemd = (config.systemd ??= {}) as Obj;
  const units = ((systemd.units as Obj[] | undefined) ?? []).slice();
  for (const u of generated) {
    if (units.some((x) => x.name === u.name))
      sg.fail("$.systemd.units", `unit ${String(u.name)} is both written out and generated by with_mount_unit`);
    else units.push(u);
  }
  systemd.units = units;
}
