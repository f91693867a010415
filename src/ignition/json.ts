import type { Parsed } from "./butane.ts";
import { decodeDocument, parseYaml } from "./decode.ts";
import type { Diagnostic } from "./diagnostic.ts";
import { fieldsAt, IGNITION, isSpec, specAtMost } from "./spec.ts";
import { literalTemplater, type Templater } from "./template.ts";
import { unsupportedVersion } from "./validate.ts";

/**
 * A raw Ignition JSON profile. JSON.parse decides what is valid JSON; the YAML parser (JSON is YAML) then
 * gives every value its line:column for the diagnostics, and the typed decoder expands templates in strings.
 */
export function parseIgnitionJson(
  text: string,
  opts: { strict?: boolean; templater?: Templater } = {},
): Parsed | { diagnostics: Diagnostic[] } {
  let plain: unknown;
  try {
    plain = JSON.parse(text);
  } catch (e) {
    return {
      diagnostics: [
        { severity: "error", message: `not valid JSON: ${(e as Error).message}`, ...jsonErrorPos(text, e as Error) },
      ],
    };
  }
  const version = (plain as { ignition?: { version?: unknown } } | null)?.ignition?.version;
  if (!isSpec(version))
    return { diagnostics: [{ severity: "error", path: "$.ignition.version", message: unsupportedVersion(version) }] };
  const { doc, lc, diagnostics } = parseYaml(text);
  if (diagnostics.some((d) => d.severity === "error")) return { diagnostics };
  const decoded = decodeDocument(doc, lc, doc.contents, IGNITION, {
    fieldsOf: (n) => fieldsAt(n, version),
    keyOf: (f) => f.name,
    refusedKey: (n, key) => {
      const later = n.fields.find((f) => f.name === key && f.since && !specAtMost(f.since, version));
      return later ? `"${key}" needs Ignition spec ${later.since}; this config is ${version}` : undefined;
    },
    strict: opts.strict ?? false,
    templater: opts.templater ?? literalTemplater,
  });
  return {
    config: (decoded.value ?? {}) as Record<string, unknown>,
    spec: version,
    diagnostics: [...diagnostics, ...decoded.diagnostics],
    positions: decoded.positions,
    templated: decoded.templated,
  };
}

function jsonErrorPos(text: string, e: Error): { line?: number; column?: number } {
  const m = /position (\d+)/.exec(e.message);
  if (!m) return {};
  const before = text.slice(0, Number(m[1]));
  const lines = before.split("\n");
  return { line: lines.length, column: (lines[lines.length - 1]?.length ?? 0) + 1 };
}
