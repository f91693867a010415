import { z } from "zod";
import { normalizeMac } from "./identity.ts";

/** A MAC in any common notation, normalised to lower-case colon form; a bad one fails validation. */
export const MacSchema = z.string().transform((value, ctx) => {
  const mac = normalizeMac(value);
  if (mac === null) {
    ctx.addIssue({ code: "custom", message: `not a MAC address: ${JSON.stringify(value)}` });
    return z.NEVER;
  }
  return mac;
});

/** Names of profiles and groups: used in URLs and file names, so kept to a safe alphabet. */
export const NameSchema = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9._-]{0,62}$/,
    "must be 1-63 characters of a-z, 0-9, '.', '_', '-', starting with a letter or digit",
  );

/** Labels and metadata are flat string maps: they select groups and fill templates. */
export const LabelsSchema = z.record(
  z.string().regex(/^[A-Za-z0-9_./-]{1,63}$/, "bad label key"),
  z.string().max(1024),
);

/** Free-form JSON (metadata, profile vars) nests at most this deep and serialises to at most this many bytes. */
export const FREE_JSON_DEPTH = 32;
export const FREE_JSON_BYTES = 64 * 1024;

/**
 * Checks a free-form value's depth without recursion (a body nested thousands deep must not exhaust the
 * stack here or in anything that walks it later), then its serialised size.
 */
export function boundedJson(value: unknown, ctx: z.RefinementCtx): void {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== "object") continue;
    if (depth > FREE_JSON_DEPTH) {
      ctx.addIssue({ code: "custom", message: `nested deeper than ${FREE_JSON_DEPTH} levels` });
      return;
    }
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
  if (Buffer.byteLength(JSON.stringify(value)) > FREE_JSON_BYTES)
    ctx.addIssue({ code: "custom", message: `larger than ${FREE_JSON_BYTES} bytes as JSON` });
}

export const MetadataSchema = z.record(z.string().min(1).max(128), z.unknown()).superRefine(boundedJson);
