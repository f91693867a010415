import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { writeFileAtomic } from "../files/atomic.ts";
import { ConfigError } from "../model/errors.ts";
import type { SecretSource, SharedSecrets } from "../store/pg/secrets.ts";
import { mirrorToFile, readIfPresent } from "../token.ts";

/** What a signed URL grants; a signature for one purpose is worthless for another. */
export type Purpose = "ignition" | "final" | "report" | "metadata";

export type Verdict = "ok" | "expired" | "invalid";

/** Shortest HMAC key accepted (128 bits); generated keys have 32 bytes. */
const MIN_KEY_BYTES = 16;

/**
 * HMAC-SHA256 signatures for per-machine URLs (Ignition often holds secrets, so knowing a MAC is not enough).
 * The key lives in the data dir (and, on PostgreSQL, in the database every node reads it from), so URLs handed
 * out before a restart stay valid after it, and on every node.
 */
export class Signer {
  constructor(private readonly key: Buffer) {
    // An empty HMAC key is public knowledge: anyone could forge every signed URL.
    if (key.length < MIN_KEY_BYTES) throw new Error(`signing key of ${key.length} bytes; at least ${MIN_KEY_BYTES}`);
  }

  /**
   * Loads `<file>` (hex), or creates it with 32 random bytes, atomically and mode 0600. A file that is empty,
   * not hex or shorter than 16 bytes stops start-up rather than weakening every signature.
   */
  static fromFile(file: string): Signer {
    const text = readIfPresent(file);
    if (text !== undefined) return new Signer(parseKey(text, file));
    const key = randomBytes(32);
    writeFileAtomic(file, `${key.toString("hex")}\n`, 0o600);
    return new Signer(key);
  }

  /**
   * This node's key: without `shared` (SQLite) the file's, as fromFile; with it (PostgreSQL) the key every
   * node shares, stored by the first node from its `<file>` (so URLs it handed out stay valid) or generated,
   * and written to `<file>` too. A weak key in the database stops start-up, as a weak file does.
   */
  static async load(file: string, shared?: SharedSecrets): Promise<{ signer: Signer; source: SecretSource }> {
    if (!shared) {
      const existed = readIfPresent(file) !== undefined;
      return { signer: Signer.fromFile(file), source: existed ? "file" : "generated" };
    }
    let seededFrom = "generated" as "file" | "generated";
    const { value, created } = await shared.getOrCreate("signing-key", () => {
      const own = readIfPresent(file);
      if (own === undefined) return randomBytes(32).toString("hex");
      seededFrom = "file";
      return parseKey(own, file).toString("hex");
    });
    const key = parseKey(value, "in PostgreSQL (table secrets, name signing-key)");
    mirrorToFile(file, key.toString("hex"));
    return {
      signer: new Signer(key),
      source: !created ? "postgres" : seededFrom === "file" ? "file-to-postgres" : "generated-in-postgres",
    };
  }

  /** `group`, when set, is the group the machine booted through: signed so the URL cannot be moved to another. */
  sign(purpose: Purpose, mac: string, expiresAt: number, group?: string): string {
    const subject = `${purpose}\n${mac}\n${expiresAt}${group === undefined ? "" : `\n${group}`}`;
    return createHmac("sha256", this.key).update(subject).digest("base64url");
  }

  /** Query string `mac=..&exp=..&sig=..` (and `&group=..`) valid for `ttlSeconds`. */
  query(purpose: Purpose, mac: string, ttlSeconds: number, now = Date.now(), group?: string): string {
    const exp = Math.floor(now / 1000) + ttlSeconds;
    // What URLSearchParams would write (exp is digits, sig base64url), without its cost on every boot request.
    const g = group === undefined ? "" : `&group=${encodeURIComponent(group)}`;
    return `mac=${encodeURIComponent(mac)}&exp=${exp}${g}&sig=${this.sign(purpose, mac, exp, group)}`;
  }

  verify(
    purpose: Purpose,
    mac: string,
    exp: string | undefined,
    sig: string | undefined,
    now = Date.now(),
    group?: string,
  ): Verdict {
    if (!exp || !sig || !/^\d{1,12}$/.test(exp)) return "invalid";
    const want = Buffer.from(this.sign(purpose, mac, Number(exp), group));
    const got = Buffer.from(sig);
    if (want.length !== got.length || !timingSafeEqual(want, got)) return "invalid";
    return Number(exp) * 1000 < now ? "expired" : "ok";
  }
}

/** The key in `text` (hex); one that is empty, not hex or shorter than 16 bytes stops start-up. */
function parseKey(text: string, where: string): Buffer {
  const hex = text.trim();
  const problem =
    hex.length === 0
      ? "is empty"
      : !/^(?:[0-9a-fA-F]{2})+$/.test(hex)
        ? "is not hex (an even number of 0-9a-f digits)"
        : hex.length < MIN_KEY_BYTES * 2
          ? `holds ${hex.length / 2} bytes; at least ${MIN_KEY_BYTES} are needed`
          : null;
  if (problem)
    throw new ConfigError(
      `signing key ${where} ${problem}; delete it to have a new one generated ` +
        "(signed URLs handed out before stop working), or write at least 32 hex digits",
    );
  return Buffer.from(hex, "hex");
}
