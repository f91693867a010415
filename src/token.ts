import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { writeFileAtomic } from "./files/atomic.ts";
import { ConfigError } from "./model/errors.ts";
import type { SecretSource, SharedSecrets } from "./store/pg/secrets.ts";

export const tokenFile = (dataDir: string) => join(dataDir, "api-token");

/** Shortest API token accepted from any source (config, env, flag, file, database). */
export const MIN_TOKEN_LENGTH = 16;

/** Why `token` cannot protect the API, or null when it can. */
export function tokenProblem(token: string): string | null {
  if (token.length === 0) return "is empty";
  if (/\s/.test(token)) return "contains whitespace";
  if (token.length < MIN_TOKEN_LENGTH) return `is ${token.length} characters; at least ${MIN_TOKEN_LENGTH} are needed`;
  return null;
}

/** The file's text, or undefined when there is no file. */
export function readIfPresent(file: string): string | undefined {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    return undefined;
  }
}

/** The token in `<dataDir>/api-token`, or undefined without the file; a weak one stops start-up. */
function readTokenFile(file: string): string | undefined {
  const text = readIfPresent(file);
  if (text === undefined) return undefined;
  const token = text.trim();
  const problem = tokenProblem(token);
  if (problem)
    throw new ConfigError(
      `invalid config: apiToken: the token in ${file} ${problem}; ` +
        `delete the file to have a new one generated, or write a token of at least ${MIN_TOKEN_LENGTH} characters`,
    );
  return token;
}

const newToken = () => randomBytes(24).toString("base64url");

/**
 * The API token: the configured one (it wins on this node, and is not shared), else
 * - without `shared` (SQLite): the one in `<dataDir>/api-token`, else a new random one written there;
 * - with `shared` (PostgreSQL): the one every node shares, stored by the first node from its token file or
 *   generated. The shared value is written to `<dataDir>/api-token` too, so the CLI on this host finds it.
 * Files are written atomically, mode 0600. A token file that is empty, short or holds whitespace inside the
 * token stops start-up (an empty token would let `token=` log in), and so does such a token in the database.
 */
export async function resolveApiToken(
  configured: string | undefined,
  dataDir: string,
  shared?: SharedSecrets,
): Promise<{ token: string; file?: string; source: SecretSource }> {
  if (configured !== undefined) {
    // The config schema checks this too; repeated so no caller can start the API behind a weak token.
    const problem = tokenProblem(configured);
    if (problem) throw new ConfigError(`invalid config: apiToken: ${problem}`);
    return { token: configured, source: "config" };
  }
  const file = tokenFile(dataDir);
  if (!shared) {
    const token = readTokenFile(file);
    if (token !== undefined) return { token, file, source: "file" };
    mkdirSync(dataDir, { recursive: true });
    const created = newToken();
    writeFileAtomic(file, `${created}\n`, 0o600);
    return { token: created, file, source: "generated" };
  }
  let seededFrom = "generated" as "file" | "generated";
  const { value, created } = await shared.getOrCreate("api-token", () => {
    const own = readTokenFile(file);
    if (own !== undefined) seededFrom = "file";
    return own ?? newToken();
  });
  const problem = tokenProblem(value);
  if (problem)
    throw new ConfigError(
      `invalid config: apiToken: the shared token in PostgreSQL (table secrets, name api-token) ${problem}; ` +
        `set it to a token of at least ${MIN_TOKEN_LENGTH} characters`,
    );
  mirrorToFile(file, value);
  return {
    token: value,
    file,
    source: !created ? "postgres" : seededFrom === "file" ? "file-to-postgres" : "generated-in-postgres",
  };
}

/** Writes a shared secret to this node's file (0600) unless the file already holds it. */
export function mirrorToFile(file: string, value: string): void {
  if (readIfPresent(file)?.trim() === value) return;
  mkdirSync(dirname(file), { recursive: true });
  writeFileAtomic(file, `${value}\n`, 0o600);
}
