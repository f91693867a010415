import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "./files/atomic.ts";
import { ConfigError } from "./model/errors.ts";

export const tokenFile = (dataDir: string) => join(dataDir, "api-token");

/** Shortest API token accepted from any source (config, env, flag, file). */
export const MIN_TOKEN_LENGTH = 16;

/** Why `token` cannot protect the API, or null when it can. */
export function tokenProblem(token: string): string | null {
  if (token.length === 0) return "is empty";
  if (/\s/.test(token)) return "contains whitespace";
  if (token.length < MIN_TOKEN_LENGTH) return `is ${token.length} characters; at least ${MIN_TOKEN_LENGTH} are needed`;
  return null;
}

/**
 * The API token: the configured one, else the one in `<dataDir>/api-token`, else a new random one written
 * there atomically (mode 0600). `created` tells the caller to say where it is. A token file that is empty,
 * short or holds whitespace inside the token stops start-up: an empty token would let `token=` log in.
 */
export function resolveApiToken(
  configured: string | undefined,
  dataDir: string,
): { token: string; file?: string; created: boolean } {
  if (configured !== undefined) {
    // The config schema checks this too; repeated so no caller can start the API behind a weak token.
    const problem = tokenProblem(configured);
    if (problem) throw new ConfigError(`invalid config: apiToken: ${problem}`);
    return { token: configured, created: false };
  }
  const file = tokenFile(dataDir);
  let text: string | undefined;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  if (text !== undefined) {
    const token = text.trim();
    const problem = tokenProblem(token);
    if (problem)
      throw new ConfigError(
        `invalid config: apiToken: the token in ${file} ${problem}; ` +
          `delete the file to have a new one generated, or write a token of at least ${MIN_TOKEN_LENGTH} characters`,
      );
    return { token, file, created: false };
  }
  mkdirSync(dataDir, { recursive: true });
  const token = randomBytes(24).toString("base64url");
  writeFileAtomic(file, `${token}\n`, 0o600);
  return { token, file, created: true };
}
