import type { Pos } from "./decode.ts";
import type { Diagnostic } from "./diagnostic.ts";
import type { Spec } from "./spec.ts";

/** A Butane or Ignition document decoded into an Ignition config of `spec`, with where each path came from. */
export interface Parsed {
  config: Record<string, unknown>;
  spec: Spec;
  diagnostics: Diagnostic[];
  positions: Map<string, Pos>;
  templated: Set<string>;
}

/** What desugaring a Butane document needs: where local files are, the target spec, and where to report. */
export interface Sugar {
  filesDir: string | undefined;
  spec: Spec;
  fail(path: string, message: string): void;
  warn(path: string, message: string): void;
}
