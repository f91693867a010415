/**
 * JSON text as Go's encoding/json writes it (which Butane and Ignition use), so `kindling butane` output is
 * byte-for-byte Butane's: `<`, `>`, `&`, U+2028 and U+2029 escaped as \u003c etc., and control characters other
 * than \n, \r, \t as \u00XX. Key order is the caller's (canonical order is Ignition's, see spec.ts).
 */
const GO_ESCAPES: Record<string, string> = {
  "<": "\\u003c",
  ">": "\\u003e",
  "&": "\\u0026",
  "\u2028": "\\u2028",
  "\u2029": "\\u2029",
  "\\b": "\\u0008",
  "\\f": "\\u000c",
};

export function marshal(value: unknown, pretty = false): string {
  // In JSON.stringify's output these characters and short escapes only occur inside strings; `\\` pairs are
  // matched first so that an escaped backslash followed by "b" is left alone.
  return JSON.stringify(value, null, pretty ? 2 : undefined).replace(
    /\\\\|\\b|\\f|[<>&\u2028\u2029]/g,
    (m) => GO_ESCAPES[m] ?? m,
  );
}
