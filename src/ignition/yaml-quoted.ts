/**
 * A double-quoted YAML scalar read as libyaml (and so Butane's gopkg.in/yaml.v3) reads it. The YAML library
 * Kindling parses with agrees except on one point: after a `\` that escapes a line break, each following empty
 * line still gives a line feed (YAML 1.2 §7.5, `s-double-escaped`), which it drops. Butane documents decode
 * with this function only when they contain such an escape. `raw` is the scalar with its quotes.
 */
const ESCAPES: Record<string, string> = {
  "0": "\0",
  a: "\x07",
  b: "\b",
  t: "\t",
  "\t": "\t",
  n: "\n",
  v: "\v",
  f: "\f",
  r: "\r",
  e: "\x1b",
  " ": " ",
  '"': '"',
  "/": "/",
  "\\": "\\",
  N: "\u0085",
  _: "\u00a0",
  L: "\u2028",
  P: "\u2029",
};
const HEX_LENGTH: Record<string, number> = { x: 2, u: 4, U: 8 };

/** Whether `raw` holds a backslash escaping a line break (an odd run of backslashes before it). */
export function hasEscapedLineBreak(raw: string): boolean {
  return /(^|[^\\])(\\\\)*\\\r?\n/.test(raw);
}

export function libyamlDoubleQuoted(raw: string): string | undefined {
  let i = 1;
  let out = "";
  const blank = (c: string | undefined) => c === " " || c === "\t";
  const lineBreak = (c: string | undefined) => c === "\n" || c === "\r";
  const readBreak = () => {
    if (raw[i] === "\r" && raw[i + 1] === "\n") i += 2;
    else i++;
  };
  for (;;) {
    let leadingBlanks = false;
    let escapedBreak = false;
    // Non-blank characters and escapes.
    while (i < raw.length && !blank(raw[i]) && !lineBreak(raw[i])) {
      const c = raw[i] as string;
      if (c === '"') return out;
      if (c !== "\\") {
        out += c;
        i++;
        continue;
      }
      const e = raw[i + 1];
      if (lineBreak(e)) {
        i++;
        readBreak();
        leadingBlanks = true;
        escapedBreak = true;
        break;
      }
      if (e === undefined) return undefined;
      const hex = HEX_LENGTH[e];
      if (hex) {
        const digits = raw.slice(i + 2, i + 2 + hex);
        if (!new RegExp(`^[0-9A-Fa-f]{${hex}}$`).test(digits)) return undefined;
        const cp = Number.parseInt(digits, 16);
        if ((cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) return undefined;
        out += String.fromCodePoint(cp);
        i += 2 + hex;
        continue;
      }
      const esc = ESCAPES[e];
      if (esc === undefined) return undefined;
      out += esc;
      i += 2;
    }
    if (i >= raw.length) return undefined;
    if (raw[i] === '"') return out;
    // Blanks and line breaks, then join or fold.
    let whitespace = "";
    let leadingBreak = "";
    let trailingBreaks = "";
    while (blank(raw[i]) || lineBreak(raw[i])) {
      if (blank(raw[i])) {
        if (!leadingBlanks) whitespace += raw[i];
        i++;
      } else {
        readBreak();
        if (!leadingBlanks) {
          whitespace = "";
          leadingBreak = "\n";
          leadingBlanks = true;
        } else trailingBreaks += "\n";
      }
    }
    if (!leadingBlanks) out += whitespace;
    else if (leadingBreak === "\n" && !escapedBreak) out += trailingBreaks === "" ? " " : trailingBreaks;
    else out += leadingBreak + trailingBreaks;
  }
}
