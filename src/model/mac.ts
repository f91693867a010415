import { z } from "zod";
import { normalizeMac } from "../boot/identity.ts";

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
export const MetadataSchema = z.record(z.string().min(1).max(128), z.unknown());
