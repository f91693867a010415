import { decodeDocument, parseYaml } from "./decode.ts";
import type { Diagnostic } from "./diagnostic.ts";
import type { Parsed, Sugar } from "./parsed.ts";
import { canonicalize, fieldsAt, IGNITION, isSpec, specAtMost } from "./spec.ts";
import { literalTemplater, type Templater } from "./template.ts";
import { unsupportedVersion, validateIgnition } from "./validate/index.ts";

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

/** Ignition specs whose configs Ignition reads as merge/replace children (it translates them up). */
const CHILD_SPECS = /^3\.[0-5]\.0$/;

/**
 * Inline or local contents of `ignition.config.merge`/`replace`: Ignition fetches and parses them at boot, so
 * they must be a config it reads. Inline contents at the document's own spec are validated in full, as Butane
 * does; at another 3.x spec they get Butane's warning (Ignition translates them; they are not checked field by
 * field). Butane checks no local contents; Kindling refuses local contents that are not JSON, of a version
 * Ignition cannot read, or, at the document's spec, invalid (Ignition would fail the boot on each), and adds
 * no warnings for them.
 */
export function checkChildConfig(data: Buffer, path: string, sg: Sugar, inline: boolean): void {
  const text = data.toString("utf8");
  let version: unknown;
  try {
    version = (JSON.parse(text) as { ignition?: { version?: unknown } } | null)?.ignition?.version;
  } catch (e) {
    return sg.fail(path, `config is not valid JSON: ${(e as Error).message}`);
  }
  if (version !== sg.spec) {
    if (typeof version === "string" && CHILD_SPECS.test(version)) {
      if (inline) sg.warn(path, `config is Ignition ${version}, not ${sg.spec}: skipping its validation`);
      return;
    }
    return sg.fail(path, `Ignition cannot read a merged config of version ${JSON.stringify(version ?? null)}`);
  }
  const parsed = parseIgnitionJson(text);
  const found =
    "config" in parsed ? [...parsed.diagnostics, ...validateIgnition(canonicalize(parsed.config))] : parsed.diagnostics;
  for (const d of found) {
    const message = `merged config${d.path ? ` ${d.path}` : ""}: ${d.message}`;
    if (d.severity === "error") sg.fail(path, message);
    else if (inline) sg.warn(path, message);
  }
}
