import { checkProfileIgnition, formatDiagnostic } from "../../ignition/index.ts";
import type { ProfileCreate } from "../../model/profile.ts";
import { ValidationError } from "../errors.ts";

/**
 * Compiles a profile's Ignition template when it is saved, so a mistake surfaces at the keyboard and not on
 * a booting machine. Unknown keys are errors (strict mode). A pinned Flatcar version also checks the config fits the spec that release accepts.
 */
export function checkProfile(p: ProfileCreate): void {
  if (!p.ignition) return;
  const field = p.ignition.butane !== undefined ? "ignition.butane" : "ignition.json";
  const pinned = p.flatcar && p.flatcar.version !== "current" ? p.flatcar.version : undefined;
  // Strict: an unknown (typo'd) key is an error here, where someone can fix it, not a warning nobody reads.
  const errors = checkProfileIgnition(p.ignition, {
    strict: true,
    ...(pinned ? { flatcarVersion: pinned } : {}),
  }).filter((d) => d.severity === "error");
  if (errors.length > 0) {
    const issues = errors.map((d) => ({ field, message: formatDiagnostic(d) }));
    throw new ValidationError(field, `${field}: ${issues.map((i) => i.message).join("; ")}`, issues);
  }
}
