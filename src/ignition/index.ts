/** Public surface of the Ignition subsystem (see docs/ignition.md). */

export type { Diagnostic } from "./diagnostic.ts";
export { formatDiagnostic, IgnitionError } from "./diagnostic.ts";
export type { IgnitionConfig, IgnitionSource, Rendered, RenderInput } from "./render.ts";
export { checkProfileIgnition, renderIgnition, translateButane, validateSource } from "./render.ts";
export { SPECS, type Spec } from "./spec.ts";
export type { TemplateValues } from "./template.ts";
export { validateIgnition } from "./validate/index.ts";
