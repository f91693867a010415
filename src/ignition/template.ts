/**
 * Per-machine templating of profile strings.
 *
 * Syntax: `{{ name }}` or `{{ name.sub.key }}` or `{{ labels["topology.kubernetes.io/zone"] }}` is replaced by
 * the value; `{{ "text" }}` writes `text` literally (the way to write a literal `{{`, e.g. `{{ "{{.Names}}" }}`).
 * Any other `{{` is a syntax error, so a typo never ships half-substituted.
 *
 * Substitution runs on the string values of the parsed YAML/JSON, one pass, never on the raw text: a value
 * containing quotes, newlines, `{{`, anchors or tags lands in the string as-is and cannot change the structure.
 */
export type TemplateScalar = string | number | boolean;
export type TemplateValue = TemplateScalar | null | undefined | TemplateValue[] | TemplateValues;
export interface TemplateValues {
  [key: string]: TemplateValue;
}

export class TemplateError extends Error {}

type Part = { text: string } | { ref: string[] };

const IDENT = /[A-Za-z_][A-Za-z0-9_-]*/y;
const STRING = /"(?:[^"\\\n]|\\.)*"/y;

function skipSpace(s: string, i: number): number {
  while (s[i] === " " || s[i] === "\t") i++;
  return i;
}

function readAt(re: RegExp, s: string, i: number): string | undefined {
  re.lastIndex = i;
  return re.exec(s)?.[0];
}

/** Splits a string into literal text and references; throws TemplateError naming the bad spot. */
export function parseTemplate(s: string): Part[] {
  const parts: Part[] = [];
  let text = "";
  let i = 0;
  while (i < s.length) {
    const open = s.indexOf("{{", i);
    if (open < 0) {
      text += s.slice(i);
      break;
    }
    text += s.slice(i, open);
    let j = skipSpace(s, open + 2);
    const lit = readAt(STRING, s, j);
    let ref: string[] | undefined;
    if (lit !== undefined) {
      text += JSON.parse(lit) as string;
      j += lit.length;
    } else {
      const head = readAt(IDENT, s, j);
      if (head === undefined)
        throw new TemplateError(`template at offset ${open}: expected {{ name }} or {{ "literal" }}`);
      ref = [head];
      j += head.length;
      for (;;) {
        if (s[j] === ".") {
          const seg = readAt(IDENT, s, j + 1);
          if (seg === undefined) throw new TemplateError(`template at offset ${open}: expected a name after "."`);
          ref.push(seg);
          j += 1 + seg.length;
        } else if (s[j] === "[") {
          const key = readAt(STRING, s, j + 1);
          if (key === undefined || s[j + 1 + key.length] !== "]")
            throw new TemplateError(`template at offset ${open}: expected ["key"]`);
          ref.push(JSON.parse(key) as string);
          j += key.length + 2;
        } else break;
      }
    }
    j = skipSpace(s, j);
    if (s.slice(j, j + 2) !== "}}") throw new TemplateError(`template at offset ${open}: missing "}}"`);
    if (ref) {
      if (text) parts.push({ text });
      text = "";
      parts.push({ ref });
    }
    i = j + 2;
  }
  if (text) parts.push({ text });
  return parts;
}

export function refName(ref: readonly string[]): string {
  return ref
    .map((seg, i) => (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg) ? (i === 0 ? seg : `.${seg}`) : `[${JSON.stringify(seg)}]`))
    .join("");
}

/**
 * Values a machine reports about itself (through /ipxe query parameters, i.e. anyone on the boot network).
 * They never legitimately hold control characters, and a newline in one could add a line to a unit file that
 * templates it, so such a value is refused rather than substituted.
 */
const MACHINE_REPORTED = new Set(["mac", "uuid", "serial", "hostname", "arch", "ip"]);
const CONTROL = /[\u0000-\u001f\u007f]/;

export function resolveRef(values: TemplateValues, ref: readonly string[]): TemplateScalar {
  let cur: TemplateValue = values;
  for (const seg of ref) {
    // Own properties only: a reference can never reach Object.prototype (`constructor`, `__proto__`).
    if (cur === null || typeof cur !== "object" || Array.isArray(cur) || !Object.hasOwn(cur, seg)) {
      throw new TemplateError(`template value "${refName(ref)}" is not set for this machine`);
    }
    cur = (cur as TemplateValues)[seg];
  }
  if (cur === null || cur === undefined)
    throw new TemplateError(`template value "${refName(ref)}" is not set for this machine`);
  if (typeof cur === "object")
    throw new TemplateError(`template value "${refName(ref)}" is a list or map, not a single value`);
  if (ref.length === 1 && MACHINE_REPORTED.has(ref[0] ?? "") && typeof cur === "string" && CONTROL.test(cur)) {
    throw new TemplateError(
      `template value "${refName(ref)}" contains control characters; a machine-reported value is never substituted with them`,
    );
  }
  return cur;
}

export interface Expansion {
  text: string;
  /** Set when the whole string was exactly one reference: its typed value, for integer/boolean fields. */
  single?: TemplateScalar;
  /** References found (for check mode, which has no values). */
  refs: string[];
}

/** How strings are expanded: with machine values, syntax-only (profile checks), or not at all (plain Butane). */
export interface Templater {
  readonly mode: "render" | "check" | "off";
  expand(s: string): Expansion;
}

/** Stand-in for references when checking a profile without a machine. */
export const CHECK_PLACEHOLDER = "x";

export function renderTemplater(values: TemplateValues): Templater {
  return {
    mode: "render",
    expand(s) {
      const parts = parseTemplate(s);
      const refs: string[] = [];
      let text = "";
      let single: TemplateScalar | undefined;
      for (const p of parts) {
        if ("text" in p) text += p.text;
        else {
          refs.push(refName(p.ref));
          const v = resolveRef(values, p.ref);
          if (parts.length === 1) single = v;
          text += String(v);
        }
      }
      return single === undefined ? { text, refs } : { text, single, refs };
    },
  };
}

export const checkTemplater: Templater = {
  mode: "check",
  expand(s) {
    const parts = parseTemplate(s);
    const refs = parts.flatMap((p) => ("ref" in p ? [refName(p.ref)] : []));
    return { text: parts.map((p) => ("text" in p ? p.text : CHECK_PLACEHOLDER)).join(""), refs };
  },
};

export const literalTemplater: Templater = {
  mode: "off",
  expand: (s) => ({ text: s, refs: [] }),
};
