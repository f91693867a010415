import type { Spec } from "../spec.ts";

/** Where a rule reports: `sub` is a path below the object being checked ("" for the object itself). */
export interface Check {
  spec: Spec;
  path: string;
  error(sub: string, message: string): void;
  warn(sub: string, message: string): void;
}
export type Obj = Record<string, unknown>;

export const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
/** Ignition's `NotEmpty`: set and not "". */
export const notEmpty = (v: unknown): v is string => typeof v === "string" && v !== "";
