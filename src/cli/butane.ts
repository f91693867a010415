import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { parse as parseYaml } from "yaml";
import { looksLikeProfile, ProfileFileError, readProfileFile } from "../boot/builtin-profiles.ts";
import { checkProfile } from "../http/api/profile-check.ts";
import {
  type Diagnostic,
  formatDiagnostic,
  IgnitionError,
  type Rendered,
  renderIgnition,
  type TemplateValues,
  translateButane,
  validateSource,
} from "../ignition/index.ts";
import { marshal } from "../ignition/marshal.ts";

/** `kindling butane` and `kindling validate`: the Ignition tools, usable without a running server. */
export function registerIgnitionCommands(program: Command): void {
  program
    .command("butane")
    .description("translate a Butane config (variant flatcar 1.0.0/1.1.0) to Ignition JSON; reads stdin without FILE")
    .argument("[file]", "Butane YAML file (default: stdin)")
    .option("--strict", "fail on warnings (unknown keys, ignored mode bits)")
    .option("--pretty", "indent the JSON output (byte for byte as butane --pretty writes it)")
    .option("-d, --files-dir <dir>", "directory that local:, contents_local, trees etc. are relative to")
    .option("--values <file>", "render as a profile template with these per-machine values (JSON or YAML map)")
    .option("--flatcar-version <version>", "with --values: serve at the highest spec this Flatcar release accepts")
    .action(
      (
        file: string | undefined,
        opts: { strict?: boolean; pretty?: boolean; filesDir?: string; values?: string; flatcarVersion?: string },
      ) => {
        const name = file ?? "<stdin>";
        const text = readInput(file ?? 0, name);
        if (text === undefined) return;
        let values: TemplateValues | undefined;
        if (opts.values !== undefined) {
          const raw = readInput(opts.values, opts.values);
          if (raw === undefined) return;
          try {
            values = (parseYaml(raw) ?? {}) as TemplateValues;
          } catch (e) {
            process.stderr.write(`${opts.values}: not a YAML/JSON map: ${(e as Error).message.split("\n")[0]}\n`);
            process.exitCode = 1;
            return;
          }
        }
        const common = { strict: opts.strict ?? false, ...(opts.filesDir ? { filesDir: opts.filesDir } : {}) };
        let out: Rendered;
        try {
          out = values
            ? renderIgnition({
                source: { butane: text },
                values,
                ...(opts.flatcarVersion ? { flatcarVersion: opts.flatcarVersion } : {}),
                ...common,
              })
            : translateButane(text, common);
        } catch (e) {
          if (!(e instanceof IgnitionError)) throw e;
          printDiagnostics(name, e.diagnostics);
          process.exitCode = 1;
          return;
        }
        printDiagnostics(name, out.warnings);
        process.stdout.write(`${marshal(out.config, opts.pretty)}\n`);
      },
    );

  program
    .command("validate")
    .description(
      "validate an Ignition JSON config (spec 3.3.0-3.5.0), a Butane file, or a profile file; exit 1 on errors",
    )
    .argument("<file>", "Ignition JSON, Butane YAML, or a profile YAML (as in profiles/)")
    .option("--strict", "fail on warnings too")
    .option("-d, --files-dir <dir>", "files directory for a Butane file's local references")
    .action((file: string, opts: { strict?: boolean; filesDir?: string }) => {
      const text = readInput(file, file);
      if (text === undefined) return;
      if (isProfileText(text)) return validateProfile(file);
      const source = text.trimStart().startsWith("{") ? { json: text } : { butane: text };
      const { spec, diagnostics } = validateSource(source, {
        strict: opts.strict ?? false,
        ...(opts.filesDir ? { filesDir: opts.filesDir } : {}),
      });
      printDiagnostics(file, diagnostics);
      if (diagnostics.some((d) => d.severity === "error")) process.exitCode = 1;
      else process.stdout.write(`${file}: valid Ignition ${spec}\n`);
    });
}

function isProfileText(text: string): boolean {
  try {
    return looksLikeProfile(parseYaml(text));
  } catch {
    return false; // not YAML at all: validateSource reports it as a config
  }
}

/**
 * A profile file (as in `profiles/`): its schema, then its Ignition template compiled strictly with stand-in
 * per-machine values, exactly as `kindling serve` checks built-in profiles at start and the API on save.
 */
function validateProfile(file: string): void {
  try {
    const profile = readProfileFile(file);
    checkProfile(profile);
    process.stdout.write(`${file}: valid profile ${profile.name}\n`);
  } catch (err) {
    process.stderr.write(`${err instanceof ProfileFileError ? "" : `${file}: `}${(err as Error).message}\n`);
    process.exitCode = 1;
  }
}

/** File (or stdin) contents; a read error is reported like any other CLI failure (exit 1, no stack trace). */
function readInput(file: string | 0, name: string): string | undefined {
  try {
    return readFileSync(file, "utf8");
  } catch (e) {
    process.stderr.write(`${name}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}\n`);
    process.exitCode = 1;
    return undefined;
  }
}

function printDiagnostics(name: string, diags: readonly Diagnostic[]): void {
  for (const d of diags) process.stderr.write(`${name}: ${formatDiagnostic(d)}\n`);
}
