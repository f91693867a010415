import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const tokenFile = (dataDir: string) => join(dataDir, "api-token");

/**
 * The API token: the configured one, else the one in `<dataDir>/api-token`, else a new random one written
 * there (mode 0600). `created` tells the caller to say where it is.
 */
export function resolveApiToken(
  configured: string | undefined,
  dataDir: string,
): { token: string; file?: string; created: boolean } {
  if (configured) return { token: configured, created: false };
  const file = tokenFile(dataDir);
  if (existsSync(file)) return { token: readFileSync(file, "utf8").trim(), file, created: false };
  mkdirSync(dataDir, { recursive: true });
  const token = randomBytes(24).toString("base64url");
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return { token, file, created: true };
}
