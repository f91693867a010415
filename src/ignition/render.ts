import { maxIgnitionSpec } from "../flatcar/ignition-spec.ts";
import { parseButane } from "./butane.ts";
import type { Pos } from "./decode.ts";
import { type Diagnostic, hasErrors, IgnitionError } from "./diagnostic.ts";
import { parseIgnitionJson } from "./json.ts";
import type { Parsed } from "./parsed.ts";
import { canonicalize, fieldsNewerThan, pruneNewer, type Spec, specAtMost } from "./spec.ts";
import { checkTemplater, literalTemplater, renderTemplater, type Templater, type TemplateValues } from "./template.ts";
import { validateIgnition } from "./validate/index.ts";

/** A profile's `ignition` field (ProfileSchema guarantees exactly one of the two). */
export interface IgnitionSource {
  butane?: string | undefined;
  json?: string | undefined;
}

export interface IgnitionConfig {
  ignition: { version: Spec } & Record<string, unknown>;
  [section: string]: unknown;
}

export interface Rendered {
  config: IgnitionConfig;
  spec: Spec;
  warnings: Diagnostic[];
}

export interface RenderInput {
  source: IgnitionSource;
  /** Per-machine values: mac, hostname, uuid, serial, arch, ip, labels, metadata, vars, server, flatcar, urls, ... */
  values: TemplateValues;
  /** Concrete Flatcar release (e.g. 4081.2.0): the config is served at the highest spec it accepts. Absent: the source's own spec. */
  flatcarVersion?: string;
  filesDir?: string;
  /** Warnings (unknown keys, ignored mode bits) become errors. */
  strict?: boolean;
}

/** Renders a profile for one machine; throws IgnitionError (every error, with JSON path and line:column). */
export function renderIgnition(input: RenderInput): Rendered {
  const parsed = parseSource(input.source, {
    strict: input.strict,
    filesDir: input.filesDir,
    templater: renderTemplater(input.values),
  });
  const target = input.flatcarVersion === undefined ? undefined : targetSpec(input.flatcarVersion);
  const out = finish(parsed, target, input.strict ?? false, input.flatcarVersion);
  if (hasErrors(out.diagnostics)) throw new IgnitionError(out.diagnostics);
  return { config: out.config as IgnitionConfig, spec: out.spec, warnings: out.diagnostics };
}

/** Butane → Ignition at the Butane version's spec, no templating (the `kindling butane` CLI). */
export function translateButane(yaml: string, opts: { strict?: boolean; filesDir?: string } = {}): Rendered {
  const out = finish(parseButane(yaml, { ...opts, templater: literalTemplater }), undefined, opts.strict ?? false);
  if (hasErrors(out.diagnostics)) throw new IgnitionError(out.diagnostics);
  return { config: out.config as IgnitionConfig, spec: out.spec, warnings: out.diagnostics };
}

/** Validates a finished config or plain Butane file as-is (no templating): `kindling validate`. */
export function validateSource(
  source: IgnitionSource,
  opts: { strict?: boolean; filesDir?: string } = {},
): { spec: Spec; diagnostics: Diagnostic[] } {
  const out = finish(parseSource(source, { ...opts, templater: literalTemplater }), undefined, opts.strict ?? false);
  return { spec: out.spec, diagnostics: out.diagnostics };
}

/**
 * Checks a profile's ignition source without a machine (API create/update): syntax, types, template reference
 * syntax, local files, then validation; semantic rules are relaxed on objects holding template references,
 * whose final value only the machine knows. With `flatcarVersion`, also checks it can be served to that release.
 */
export function checkProfileIgnition(
  source: IgnitionSource,
  opts: { strict?: boolean; filesDir?: string; flatcarVersion?: string } = {},
): Diagnostic[] {
  let target: Spec | undefined;
  try {
    target = opts.flatcarVersion === undefined ? undefined : targetSpec(opts.flatcarVersion);
  } catch (e) {
    return (e as IgnitionError).diagnostics;
  }
  const parsed = parseSource(source, { strict: opts.strict, filesDir: opts.filesDir, templater: checkTemplater });
  const out = finish(parsed, target, opts.strict ?? false, opts.flatcarVersion);
  const templated = "templated" in parsed ? [...(parsed as Parsed).templated] : [];
  // A finding is dropped when a templated value sits at its path, below it (a duplicate entry is reported on
  // the entry, the templated value is its path) or beside it in the same object.
  const under = (t: string, p: string) => t === p || t.startsWith(`${p}.`) || t.startsWith(`${p}[`);
  return out.diagnostics.filter((d) => {
    if (!d.path || templated.length === 0) return true;
    const parent = d.path.replace(/(\.[^.[\]]+|\[\d+\])$/, "");
    return !templated.some((t) => under(t, d.path as string) || t.startsWith(`${parent}.`));
  });
}

function parseSource(
  source: IgnitionSource,
  opts: { strict?: boolean | undefined; filesDir?: string | undefined; templater: Templater },
) {
  const o = {
    strict: opts.strict ?? false,
    templater: opts.templater,
    ...(opts.filesDir ? { filesDir: opts.filesDir } : {}),
  };
  if (typeof source.butane === "string") return parseButane(source.butane, o);
  if (typeof source.json === "string") return parseIgnitionJson(source.json, o);
  return {
    diagnostics: [{ severity: "error" as const, message: "the profile's ignition has neither butane nor json" }],
  };
}

function targetSpec(flatcarVersion: string): Spec {
  let spec: Spec | null;
  try {
    spec = maxIgnitionSpec(flatcarVersion);
  } catch (e) {
    throw new IgnitionError([{ severity: "error", message: (e as Error).message }]);
  }
  if (!spec)
    throw new IgnitionError([
      {
        severity: "error",
        message: `Flatcar ${flatcarVersion} only accepts Ignition spec 2.x, which Kindling does not serve`,
      },
    ]);
  return spec;
}

/** Retarget, canonicalise, validate; positions from the source are attached to every diagnostic. */
function finish(
  parsed: Parsed | { diagnostics: Diagnostic[] },
  target: Spec | undefined,
  strict: boolean,
  flatcarVersion?: string,
): { config?: unknown; spec: Spec; diagnostics: Diagnostic[] } {
  if (!("config" in parsed) || hasErrors(parsed.diagnostics))
    return { spec: target ?? "3.5.0", diagnostics: harden(parsed.diagnostics, strict) };
  const spec = target ?? parsed.spec;
  let config: unknown = parsed.config;
  if (!specAtMost(parsed.spec, spec)) {
    const newer = fieldsNewerThan(config, spec);
    if (newer.length > 0) {
      const diagnostics = newer.map(
        (n): Diagnostic => ({
          severity: "error",
          path: n.path,
          message: `needs Ignition spec ${n.since}, but ${flatcarVersion ? `Flatcar ${flatcarVersion}` : "the target"} accepts at most ${spec}`,
          ...locate(n.path, parsed.positions),
        }),
      );
      return { spec, diagnostics: [...parsed.diagnostics, ...diagnostics] };
    }
    config = pruneNewer(config, spec);
  }
  const c = config as { ignition?: Record<string, unknown> };
  c.ignition = { ...(c.ignition ?? {}), version: spec };
  const canonical = canonicalize(c);
  const found = validateIgnition(canonical).map((d) => ({ ...d, ...(d.path ? locate(d.path, parsed.positions) : {}) }));
  return { config: canonical, spec, diagnostics: harden([...parsed.diagnostics, ...found], strict) };
}

function harden(diags: Diagnostic[], strict: boolean): Diagnostic[] {
  return strict ? diags.map((d) => ({ ...d, severity: "error" })) : diags;
}

/** Position of the nearest enclosing source node of a JSON path. */
function locate(path: string, positions: Map<string, Pos>): Partial<Pos> {
  for (let p = path; p !== "$" && p !== ""; p = p.replace(/(\.[^.[\]]+|\[\d+\])$/, "")) {
    const at = positions.get(p);
    if (at) return at;
  }
  return {};
}
