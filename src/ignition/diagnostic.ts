/** One finding about a profile or config: where (JSON path of the Ignition field, YAML line:column) and what. */
export interface Diagnostic {
  severity: "error" | "warning";
  message: string;
  /** JSON path in Ignition terms, e.g. `$.storage.files[0].path`. */
  path?: string;
  /** 1-based position in the Butane/JSON source, when the finding maps to one. */
  line?: number;
  column?: number;
}

export function formatDiagnostic(d: Diagnostic): string {
  const where = [d.line !== undefined ? `${d.line}:${d.column ?? 1}` : undefined, d.path].filter(Boolean).join(" ");
  return `${d.severity}${where ? ` at ${where}` : ""}: ${d.message}`;
}

/** Thrown by render/translate when the config cannot be served; `diagnostics` holds every error found. */
export class IgnitionError extends Error {
  readonly diagnostics: Diagnostic[];
  constructor(diagnostics: Diagnostic[]) {
    const errors = diagnostics.filter((d) => d.severity === "error");
    const shown = errors.length > 0 ? errors : diagnostics;
    super(shown.map(formatDiagnostic).join("\n"));
    this.name = "IgnitionError";
    this.diagnostics = diagnostics;
  }
  /** The first error, for callers (events, HTTP 500 bodies) that report one line. */
  get first(): Diagnostic | undefined {
    return this.diagnostics.find((d) => d.severity === "error") ?? this.diagnostics[0];
  }
}

export function hasErrors(diags: readonly Diagnostic[]): boolean {
  return diags.some((d) => d.severity === "error");
}
