/** Public surface of the Ignition subsystem (see docs/ignition.md). */
export { checkProfileIgnition, renderIgnition, translateButane, validateSource } from "./render.ts";
export type { IgnitionConfig, IgnitionSource, RenderInput, Rendered } from "./render.ts";
export { validateIgnition } from "./validate.ts";
export { formatDiagnostic, IgnitionError } from "./diagnostic.ts";
export type { Diagnostic } from "./diagnostic.ts";
export type { TemplateValues } from "./template.ts";
export { SPECS, type Spec } from "./spec.ts";
