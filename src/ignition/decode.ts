import { type Document, isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument } from "yaml";
import type { Diagnostic } from "./diagnostic.ts";
import { IgnitionError } from "./diagnostic.ts";
import type { Field, Node } from "./spec.ts";
import { TemplateError, type Templater } from "./template.ts";

/**
 * Typed decoding of a YAML (or JSON, which YAML parses too) document against the spec tree, straight from the
 * YAML AST so that every value keeps its line:column and its source text. Typing follows the field, not YAML
 * 1.2: an integer field reads `0644` as octal (YAML 1.1, as Butane does), a string field keeps the raw text
 * (`0644` stays "0644", `yes` stays "yes"). Templates are expanded here, on string values only.
 */
export interface Pos {
  line: number;
  column: number;
}

export interface DecodeOptions {
  /** Fields allowed on an object node in this dialect (Butane adds sugar and drops some Ignition fields). */
  fieldsOf(node: Node & { kind: "object" }): Field[];
  /** Key spelling in the source: Butane snake_case or Ignition camelCase. */
  keyOf(field: Field): string;
  strict: boolean;
  templater: Templater;
  /** Message for a key that must not be dropped as merely unknown: newer-spec fields, fields the variant refuses. Always an error. */
  refusedKey?(node: Node & { kind: "object" }, key: string): string | undefined;
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

export function parseYaml(text: string): { doc: Document; lc: LineCounter; diagnostics: Diagnostic[] } {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true, strict: true });
  const toDiag =
    (severity: "error" | "warning") =>
    (e: { message: string; pos: [number, number] }): Diagnostic => {
      const { line, col } = lc.linePos(e.pos[0]);
      return { severity, message: e.message.split("\n")[0] ?? e.message, line, column: col };
    };
  const diagnostics = [...doc.errors.map(toDiag("error")), ...doc.warnings.map(toDiag("warning"))];
  return { doc, lc, diagnostics };
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

const YAML11_OCTAL = /^[-+]?0[0-7]+$/;
const DECIMAL = /^[-+]?(0|[1-9][0-9]*)$/;

function decode(ctx: Ctx, y: unknown, node: Node, path: string): unknown {
  if (++ctx.visited > MAX_NODES)
    throw new IgnitionError([
      { severity: "error", message: `document expands to more than ${MAX_NODES} nodes (alias loop?)` },
    ]);
  if (isAlias(y)) y = y.resolve(ctx.doc);
  if (y === null || y === undefined || (isScalar(y) && y.value === null)) {
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
      return y.items.map((item, i) => {
        const p = `${path}[${i}]`;
        const at = posOf(ctx.lc, item);
        if (at) ctx.positions.set(p, at);
        return decode(ctx, item, node.of, p);
      });
    }
    case "string": {
      if (!isScalar(y)) return report(ctx, y, path, `expected a string, got ${typeName(y)}`);
      const raw = typeof y.value === "string" ? y.value : (y.source ?? String(y.value));
      const ex = expand(ctx, y, path, raw);
      return ex?.text;
    }
    case "int": {
      if (!isScalar(y)) return report(ctx, y, path, `expected an integer, got ${typeName(y)}`);
      if (typeof y.value === "number") {
        const src = y.source ?? String(y.value);
        if (YAML11_OCTAL.test(src)) return Number.parseInt(src, 8);
        if (/^[-+]?0[0-9]+$/.test(src)) return report(ctx, y, path, `"${src}" is not a valid octal number`);
        if (Number.isSafeInteger(y.value)) return y.value;
        return report(ctx, y, path, `expected an integer, got ${src}`);
      }
      if (typeof y.value === "string") {
        const ex = expand(ctx, y, path, y.value);
        if (!ex) return undefined;
        if (ex.refs.length > 0 && ctx.templater.mode === "check") return 0;
        if (ex.refs.length > 0 && typeof ex.single === "number" && Number.isSafeInteger(ex.single)) return ex.single;
        if (ex.refs.length > 0 && DECIMAL.test(ex.text)) return Number.parseInt(ex.text, 10);
        return report(
          ctx,
          y,
          path,
          ex.refs.length > 0
            ? `template gave "${ex.text}", expected an integer`
            : `expected an integer, got string "${y.value}"`,
        );
      }
      return report(ctx, y, path, `expected an integer, got ${typeName(y)}`);
    }
    case "bool": {
      if (!isScalar(y)) return report(ctx, y, path, `expected true or false, got ${typeName(y)}`);
      if (typeof y.value === "boolean") return y.value;
      if (typeof y.value === "string") {
        const ex = expand(ctx, y, path, y.value);
        if (!ex) return undefined;
        if (ex.refs.length > 0 && ctx.templater.mode === "check") return false;
        if (ex.refs.length > 0 && (ex.text === "true" || ex.text === "false")) return ex.text === "true";
      }
      return report(ctx, y, path, `expected true or false, got ${typeName(y)}`);
    }
  }
}

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

function decodeObject(ctx: Ctx, y: unknown, node: Node & { kind: "object" }, path: string): unknown {
  if (!isMap(y)) return report(ctx, y, path, `expected a map, got ${typeName(y)}`);
  let keys = ctx.keys.get(node);
  if (!keys) {
    keys = new Map(ctx.fieldsOf(node).map((fl) => [ctx.keyOf(fl), fl]));
    ctx.keys.set(node, keys);
  }
  const out: Record<string, unknown> = {};
  const seen = new Set<string>();
  for (const pair of y.items) {
    const key = isScalar(pair.key) ? pair.key.value : undefined;
    if (typeof key !== "string") {
      report(ctx, pair.key, path, `keys must be strings, got ${typeName(pair.key)}`);
      continue;
    }
    const field = keys.get(key);
    if (!field) {
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
