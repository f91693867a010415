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
  return files.map((f) => {
    const path = join(dir, f);
    let doc: unknown;
    try {
      doc = parseYaml(readFileSync(path, "utf8"));
    } catch (err) {
      throw new ProfileFileError(`${path}: ${(err as Error).message}`);
    }
    const parsed = ProfileCreateSchema.safeParse({ name: basename(f, extname(f)), ...(doc as object) });
    if (!parsed.success) {
      const i = parsed.error.issues[0]!;
      throw new ProfileFileError(`${path}: ${i.path.join(".") || "(top level)"}: ${i.message}`);
    }
    return parsed.data;
  });
}
