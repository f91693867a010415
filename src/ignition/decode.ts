import {
  Document,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  type Pair,
  parseAllDocuments,
  Scalar,
  visit,
} from "yaml";
import type { Diagnostic } from "./diagnostic.ts";
import { IgnitionError } from "./diagnostic.ts";
import type { Field, Node, ObjectNode } from "./spec.ts";
import { TemplateError, type Templater } from "./template.ts";
import { hasEscapedLineBreak, libyamlDoubleQuoted } from "./yaml-quoted.ts";

/**
 * Typed decoding of a YAML (or JSON, which YAML parses too) document against the spec tree, straight from the
 * YAML AST so that every value keeps its line:column and its source text. Typing follows the field, as the Go
 * YAML library Butane decodes with (gopkg.in/yaml.v3) types a scalar for the Go field it lands in: an integer
 * field reads `0644` as octal, `0x1A4`, `0b…`, `0o644` and `1_000` too; a boolean field takes `yes`/`on`/`y`;
 * a string field keeps the raw text (`0644` stays "0644", `yes` stays "yes"). Merge keys (`<<`) merge, `!!binary`
 * decodes, and only the first document of a stream is read. Templates are expanded here, on string values only.
 */
export interface Pos {
  line: number;
  column: number;
}

export interface DecodeOptions {
  /** Fields allowed on an object node in this dialect (Butane adds sugar and drops some Ignition fields). */
  fieldsOf(node: ObjectNode): Field[];
  /** Key spelling in the source: Butane snake_case or Ignition camelCase. */
  keyOf(field: Field): string;
  strict: boolean;
  templater: Templater;
  /** Message for a key that must not be dropped as merely unknown: newer-spec fields, fields the variant refuses. Always an error. */
  refusedKey?(node: ObjectNode, key: string): string | undefined;
  /**
   * Read YAML as Butane does (gopkg.in/yaml.v3 into Go structs, checked by vcontext): merge keys (`<<: *anchor`)
   * merge the anchored map(s) in, keys written beside them winning; a null list item is left out; and a null
   * or aliased value where a map belongs gets Butane's warning (its position tracking cannot follow either,
   * so Butane --strict refuses them).
   */
  butane?: boolean;
  /** The document text: in Butane mode, double-quoted scalars with an escaped line break are re-read from it. */
  text?: string;
}

export interface Decoded {
  value: unknown;
  diagnostics: Diagnostic[];
  /** Ignition-style JSON path → position of its key (or list item) in the source. */
  positions: Map<string, Pos>;
  /** Paths whose strings held template references (check mode relaxes semantic checks on them). */
  templated: Set<string>;
}

/** Work cap against alias bombs (`&a [*b, *b, ...]` nested): a profile is never anywhere near this. */
const MAX_NODES = 200_000;

interface Ctx extends DecodeOptions {
  doc: Document;
  lc: LineCounter;
  diags: Diagnostic[];
  positions: Map<string, Pos>;
  templated: Set<string>;
  visited: number;
  /** Per object node: source key → field (fieldsOf/keyOf are pure, and a document has thousands of objects). */
  keys: Map<Node, Map<string, Field>>;
}

export function parseYaml(
  source: string,
  opts: { butane?: boolean } = {},
): { doc: Document; lc: LineCounter; diagnostics: Diagnostic[]; text: string } {
  let text = source;
  // Each pass fixes every error of the two kinds below at once; the bound keeps a pathological text finite.
  for (let pass = 0; ; pass++) {
    const lc = new LineCounter();
    // A stream of several documents is read up to the end of the first, as Butane's YAML decoder does.
    const docs = parseAllDocuments(text, {
      lineCounter: lc,
      prettyErrors: false,
      uniqueKeys: true,
      strict: true,
      customTags: ["binary"],
    });
    const doc = (Array.isArray(docs) ? docs[0] : undefined) ?? new Document(null);
    // Two things libyaml (Butane) reads that YAML 1.2 does not: \' as an escape in a double-quoted string
    // (rewritten as \x27, which both read as ') and a comment right after a closing quote or bracket
    // (a space is put before the #). The document is then parsed again.
    const patches = opts.butane
      ? doc.errors.flatMap((e): [number, number, string][] => {
          const at = e.pos[0];
          if (e.code === "BAD_DQ_ESCAPE" && text.startsWith("\\'", at)) return [[at, 2, "\\x27"]];
          if (e.code === "MISSING_CHAR" && text[at] === "#") return [[at, 0, " "]];
          return [];
        })
      : [];
    if (patches.length > 0 && pass < 3) {
      for (const [at, cut, put] of patches.sort((a, b) => b[0] - a[0]))
        text = `${text.slice(0, at)}${put}${text.slice(at + cut)}`;
      continue;
    }
    const toDiag =
      (severity: "error" | "warning") =>
      (e: { message: string; pos: [number, number] }): Diagnostic => {
        const { line, col } = lc.linePos(e.pos[0]);
        return { severity, message: e.message.split("\n")[0] ?? e.message, line, column: col };
      };
    const diagnostics = [...doc.errors.map(toDiag("error")), ...doc.warnings.map(toDiag("warning"))];
    if (opts.butane) diagnostics.push(...anchorNames(doc, lc));
    return { doc, lc, diagnostics, text };
  }
}

/** libyaml names anchors with letters, digits, `-` and `_` only (YAML 1.2 allows more). */
function anchorNames(doc: Document, lc: LineCounter): Diagnostic[] {
  const out: Diagnostic[] = [];
  const check = (name: string | undefined, at: unknown) => {
    if (name === undefined || /^[A-Za-z0-9_-]+$/.test(name)) return;
    out.push({
      severity: "error",
      message: `anchor name "${name}" may hold only letters, digits, - and _`,
      ...posOf(lc, at),
    });
  };
  visit(doc, {
    Alias: (_, a) => check(a.source, a),
    Node: (_, n) => check(n.anchor, n),
  });
  return out;
}

export function decodeDocument(
  doc: Document,
  lc: LineCounter,
  root: unknown,
  node: Node,
  opts: DecodeOptions,
  path = "$",
): Decoded {
  const ctx: Ctx = {
    ...opts,
    doc,
    lc,
    diags: [],
    positions: new Map(),
    templated: new Set(),
    visited: 0,
    keys: new Map(),
  };
  const value = decode(ctx, root, node, path);
  return { value, diagnostics: ctx.diags, positions: ctx.positions, templated: ctx.templated };
}

export function posOf(lc: LineCounter, y: unknown): Pos | undefined {
  const off = (y as { range?: [number, number, number] } | null)?.range?.[0];
  if (off === undefined) return undefined;
  const { line, col } = lc.linePos(off);
  return { line, column: col };
}

function report(ctx: Ctx, y: unknown, path: string, message: string, severity: "error" | "warning" = "error"): void {
  ctx.diags.push({ severity, message, path, ...posOf(ctx.lc, y) });
}

function typeName(y: unknown): string {
  if (isMap(y)) return "a map";
  if (isSeq(y)) return "a list";
  if (isScalar(y)) return y.value === null ? "null" : `${typeof y.value} ${JSON.stringify(y.source ?? y.value)}`;
  return "nothing";
}

const TRUE = new Set(["true", "True", "TRUE"]);
const FALSE = new Set(["false", "False", "FALSE"]);
/** yaml.v3 takes these for a Go bool field only (YAML 1.1 compatibility), quoted or not. */
const YES = new Set(["y", "Y", "yes", "Yes", "YES", "on", "On", "ON"]);
const NO = new Set(["n", "N", "no", "No", "NO", "off", "Off", "OFF"]);
const GO_INT = /^[-+]?(0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO]?[0-7]+|[1-9][0-9]*|0)$/;
const YAML_FLOAT = /^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/;

function isPlain(y: Scalar): boolean {
  return y.type === Scalar.PLAIN || y.type === undefined;
}

/** A plain scalar read into a Go int field the way yaml.v3 does: `_` ignored, Go's 0x/0o/0b/0 prefixes, else a float. */
function goInt(src: string): { value: number } | { error: string } | undefined {
  const plain = src.replace(/_/g, "");
  if (!/^[-+.0-9]/.test(src)) return undefined;
  if (GO_INT.test(plain)) {
    const sign = plain.startsWith("-") ? -1 : 1;
    const body = plain.replace(/^[-+]/, "");
    const radix = /^0[xX]/.test(body) ? 16 : /^0[bB]/.test(body) ? 2 : /^0[oO]?[0-7]/.test(body) ? 8 : 10;
    const digits = radix === 10 ? body : body.replace(/^0[xXbBoO]?/, "") || "0";
    const n = Number.parseInt(digits, radix) * sign;
    return Number.isSafeInteger(n) ? { value: n } : { error: `${src} is out of range` };
  }
  // yaml.v3 reads 0649 as the decimal 649 (not octal, so a float): a mode meant as octal with a typo.
  if (/^[-+]?0[0-9]+$/.test(plain)) return { error: `"${src}" is not a valid octal number` };
  if (YAML_FLOAT.test(plain)) {
    const n = Number(plain);
    // yaml.v3 truncates a fraction silently (uid: 1000.5 becomes 1000); a truncated uid or mode is never what
    // was meant, so a fraction is refused.
    if (!Number.isInteger(n)) return { error: `${src} is not a whole number` };
    return Number.isSafeInteger(n) ? { value: n } : { error: `${src} is out of range` };
  }
  return undefined;
}

function decode(ctx: Ctx, y: unknown, node: Node, path: string): unknown {
  if (++ctx.visited > MAX_NODES)
    throw new IgnitionError([
      { severity: "error", message: `document expands to more than ${MAX_NODES} nodes (alias loop?)` },
    ]);
  const alias = isAlias(y);
  if (isAlias(y)) {
    const target = y.resolve(ctx.doc);
    if (target === undefined) return report(ctx, y, path, `unknown anchor "${y.source}" referenced`);
    y = target;
  }
  if (ctx.butane && node.kind === "object" && (alias || y == null || (isScalar(y) && y.value === null)))
    report(
      ctx,
      y,
      path,
      alias
        ? "map given by an alias: Butane warns here (it cannot follow aliases to check the keys)"
        : "empty value where a map is expected",
      "warning",
    );
  const plainNull = isScalar(y) && isPlain(y) && y.value === null;
  if (y === null || y === undefined || plainNull || (isScalar(y) && y.value === null)) {
    if (node.kind !== "object" && node.kind !== "array" && node.nullable) return null;
    if (node.kind === "object" || node.kind === "array") return undefined;
    report(ctx, y, path, "must not be null");
    return undefined;
  }
  switch (node.kind) {
    case "object":
      return decodeObject(ctx, y, node, path);
    case "array": {
      if (!isSeq(y)) return report(ctx, y, path, `expected a list, got ${typeName(y)}`);
      // A null item is left out, as Butane's YAML decoder leaves it out of a Go slice.
      const items = ctx.butane
        ? y.items.filter((item) => !(item === null || (isScalar(item) && item.value === null)))
        : y.items;
      return items.map((item, i) => {
        const p = `${path}[${i}]`;
        const at = posOf(ctx.lc, item);
        if (at) ctx.positions.set(p, at);
        return decode(ctx, item, node.of, p);
      });
    }
    case "string": {
      if (!isScalar(y)) return report(ctx, y, path, `expected a string, got ${typeName(y)}`);
      if (y.value instanceof Uint8Array) {
        // !!binary: the decoded bytes. Resource contents keep them as bytes; elsewhere they are text.
        const bytes = Buffer.from(y.value);
        return path.endsWith(".inline") ? bytes : bytes.toString("utf8");
      }
      let raw = typeof y.value === "string" ? y.value : (y.source ?? String(y.value));
      if (ctx.butane && ctx.text !== undefined && y.type === Scalar.QUOTE_DOUBLE && y.range) {
        const quoted = ctx.text.slice(y.range[0], y.range[1]);
        if (hasEscapedLineBreak(quoted)) raw = libyamlDoubleQuoted(quoted) ?? raw;
      }
      const ex = expand(ctx, y, path, raw);
      return ex?.text;
    }
    case "int": {
      if (!isScalar(y)) return report(ctx, y, path, `expected an integer, got ${typeName(y)}`);
      if (isPlain(y)) {
        const src = y.source ?? String(y.value);
        // JSON (raw Ignition) numbers are decimal, as Go's encoding/json reads them into an int.
        const n = ctx.butane ? goInt(src) : DECIMAL.test(src) ? { value: Number(src) } : undefined;
        if (n && "value" in n && Number.isSafeInteger(n.value)) return n.value;
        if (n && "error" in n) return report(ctx, y, path, n.error);
      }
      if (typeof y.value === "string" && ctx.templater.mode !== "off") {
        const ex = expand(ctx, y, path, y.value);
        if (!ex) return undefined;
        if (ex.refs.length > 0 && ctx.templater.mode === "check") return 0;
        if (ex.refs.length > 0 && typeof ex.single === "number" && Number.isSafeInteger(ex.single)) return ex.single;
        if (ex.refs.length > 0 && DECIMAL.test(ex.text)) return Number.parseInt(ex.text, 10);
        if (ex.refs.length > 0) return report(ctx, y, path, `template gave "${ex.text}", expected an integer`);
      }
      return report(ctx, y, path, `expected an integer, got ${typeName(y)}`);
    }
    case "bool": {
      if (!isScalar(y)) return report(ctx, y, path, `expected true or false, got ${typeName(y)}`);
      if (typeof y.value === "boolean" && isPlain(y)) {
        const src = y.source ?? String(y.value);
        if (TRUE.has(src) || FALSE.has(src)) return y.value;
      }
      const text = typeof y.value === "string" ? y.value : (y.source ?? String(y.value));
      if (ctx.butane && YES.has(text)) return true;
      if (ctx.butane && NO.has(text)) return false;
      if (typeof y.value === "string" && ctx.templater.mode !== "off") {
        const ex = expand(ctx, y, path, y.value);
        if (!ex) return undefined;
        if (ex.refs.length > 0 && ctx.templater.mode === "check") return false;
        if (ex.refs.length > 0 && (ex.text === "true" || ex.text === "false")) return ex.text === "true";
      }
      return report(ctx, y, path, `expected true or false, got ${typeName(y)}`);
    }
  }
}

const DECIMAL = /^[-+]?(0|[1-9][0-9]*)$/;

function expand(ctx: Ctx, y: unknown, path: string, raw: string) {
  try {
    const ex = ctx.templater.expand(raw);
    if (ex.refs.length > 0) ctx.templated.add(path);
    return ex;
  } catch (e) {
    if (!(e instanceof TemplateError)) throw e;
    report(ctx, y, path, e.message);
    return undefined;
  }
}

/**
 * The pairs of a map with `<<` merges applied as yaml.v3 applies them: keys written in the map win over merged
 * ones, and of several merged maps (`<<: [*a, *b]`) the first wins. The `<<` key itself stays in the list, so
 * it is reported as an unknown key, as Butane does.
 */
function mergedPairs(ctx: Ctx, y: unknown, path: string): { pair: Pair; merged: boolean }[] {
  if (!isMap(y)) return [];
  const out = y.items.map((pair) => ({ pair, merged: false }));
  if (!ctx.butane) return out;
  const have = new Set(y.items.map((p) => (isScalar(p.key) ? p.key.value : undefined)));
  for (const pair of y.items) {
    if (!isScalar(pair.key) || pair.key.value !== "<<" || !isPlain(pair.key)) continue;
    const resolve = (v: unknown) => {
      if (!isAlias(v)) return v;
      const target = v.resolve(ctx.doc);
      if (target === undefined) report(ctx, v, path, `unknown anchor "${v.source}" referenced`);
      return target;
    };
    const value = resolve(pair.value);
    const sources = isSeq(value) ? value.items.map(resolve) : [value];
    for (const src of sources) {
      if (!isMap(src)) continue;
      for (const { pair: inner } of mergedPairs(ctx, src, path)) {
        const k = isScalar(inner.key) ? inner.key.value : undefined;
        if (k === "<<" || have.has(k)) continue;
        have.add(k);
        out.push({ pair: inner, merged: true });
      }
    }
  }
  return out;
}

/** Whether an empty key was written as an explicit `?` key (the only form of empty key libyaml takes). */
function explicitKey(ctx: Ctx, key: Scalar): boolean {
  const at = key.range?.[0];
  if (at === undefined || ctx.text === undefined) return true;
  const lineStart = ctx.text.lastIndexOf("\n", at - 1) + 1;
  return ctx.text.slice(lineStart, at).trimStart().startsWith("?");
}

function decodeObject(ctx: Ctx, y: unknown, node: ObjectNode, path: string): unknown {
  if (!isMap(y)) return report(ctx, y, path, `expected a map, got ${typeName(y)}`);
  let keys = ctx.keys.get(node);
  if (!keys) {
    keys = new Map(ctx.fieldsOf(node).map((fl) => [ctx.keyOf(fl), fl]));
    ctx.keys.set(node, keys);
  }
  const out: Record<string, unknown> = {};
  const seen = new Set<string>();
  for (const { pair, merged } of mergedPairs(ctx, y, path)) {
    // An empty key not written as `? ` (as in `: 1`, or `a: {}: 1`): libyaml refuses the line.
    if (ctx.butane && isScalar(pair.key) && pair.key.value === null && !explicitKey(ctx, pair.key)) {
      report(ctx, pair.key, path, "mapping values are not allowed in this context");
      continue;
    }
    // A key that YAML reads as a number or boolean is matched by its text, as a Go struct field name is.
    const key = isScalar(pair.key)
      ? typeof pair.key.value === "string"
        ? pair.key.value
        : pair.key.source
      : undefined;
    if (typeof key !== "string") {
      report(ctx, pair.key, path, `keys must be strings, got ${typeName(pair.key)}`);
      continue;
    }
    const field = keys.get(key);
    if (!field) {
      // Unknown keys of a merged map are reported where that map is written, not at each place it is merged.
      if (merged) continue;
      const newer = ctx.refusedKey?.(node, key);
      if (newer) {
        report(ctx, pair.key, path, newer);
        continue;
      }
      report(ctx, pair.key, path, `unknown key "${key}"`, ctx.strict ? "error" : "warning");
      continue;
    }
    const p = `${path}.${field.name}`;
    const at = posOf(ctx.lc, pair.value ?? pair.key) ?? posOf(ctx.lc, pair.key);
    if (at) ctx.positions.set(p, at);
    seen.add(field.name);
    const v = decode(ctx, pair.value, field.node, p);
    if (v !== undefined) out[field.name] = v;
  }
  for (const [k, fl] of keys)
    if (fl.required && !seen.has(fl.name)) report(ctx, y, path, `missing required key "${k}"`);
  return out;
}
