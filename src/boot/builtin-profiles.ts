import { readdirSync, readFileSync } from "node:fs";
import { basename, extname, join } from "node:path";
import { parse as parseYaml } from "yaml";
import { type ProfileCreate, ProfileCreateSchema } from "../model/profile.ts";

export class ProfileFileError extends Error {
  override name = "ProfileFileError";
}

/** Reads every `<name>.yaml` in `dir` as a profile named after the file; a bad file stops start-up, naming it. */
export function readProfileDir(dir: string): ProfileCreate[] {
  let files: string[];
  try {
    files = readdirSync(dir)
      .filter((f) => [".yaml", ".yml"].includes(extname(f)))
      .sort();
  } catch (err) {
    throw new ProfileFileError(`profiles directory ${dir}: ${(err as Error).message}`);
  }
  return files.map((f) => readProfileFile(join(dir, f)));
}

/** One profile file; its name is the file's name without the extension. Throws ProfileFileError naming the key. */
export function readProfileFile(path: string): ProfileCreate {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, "utf8"));
  } catch (err) {
    throw new ProfileFileError(`${path}: ${(err as Error).message}`);
  }
  const parsed = ProfileCreateSchema.safeParse({ name: basename(path, extname(path)), ...(doc as object) });
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    throw new ProfileFileError(`${path}: ${i.path.join(".") || "(top level)"}: ${i.message}`);
  }
  return parsed.data;
}

/**
 * A document is a profile, not a config, when it has a profile's own keys and neither Butane's `variant` nor
 * Ignition's `ignition.version` (a profile's `ignition` holds `butane:` or `json:`).
 */
export function looksLikeProfile(doc: unknown): boolean {
  if (typeof doc !== "object" || doc === null || "variant" in doc) return false;
  const ignition = (doc as { ignition?: unknown }).ignition;
  if (typeof ignition === "object" && ignition !== null && "version" in ignition) return false;
  return ["flatcar", "boot", "localDisk", "install", "ignition"].some((k) => k in doc);
}
