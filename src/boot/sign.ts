import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";

/** What a signed URL grants; a signature for one purpose is worthless for another. */
export type Purpose = "ignition" | "final" | "report" | "metadata";

export type Verdict = "ok" | "expired" | "invalid";

/**
 * HMAC-SHA256 signatures for per-machine URLs (Ignition often holds secrets, so knowing a MAC is not enough).
 * The key lives in the data dir, so URLs handed out before a restart stay valid after it.
 */
export class Signer {
  constructor(private readonly key: Buffer) {}

  /** Loads `<file>` or creates it with 32 random bytes (mode 0600). */
  static fromFile(file: string): Signer {
    if (!existsSync(file)) {
      writeFileSync(file, `${randomBytes(32).toString("hex")}\n`, { mode: 0o600 });
      chmodSync(file, 0o600);
    }
    return new Signer(Buffer.from(readFileSync(file, "utf8").trim(), "hex"));
  }

  sign(purpose: Purpose, mac: string, expiresAt: number): string {
    return createHmac("sha256", this.key).update(`${purpose}\n${mac}\n${expiresAt}`).digest("base64url");
  }

  /** Query string `mac=..&exp=..&sig=..` valid for `ttlSeconds`. */
  query(purpose: Purpose, mac: string, ttlSeconds: number, now = Date.now()): string {
    const exp = Math.floor(now / 1000) + ttlSeconds;
    // What URLSearchParams would write (exp is digits, sig base64url), without its cost on every boot request.
    return `mac=${encodeURIComponent(mac)}&exp=${exp}&sig=${this.sign(purpose, mac, exp)}`;
  }

  verify(purpose: Purpose, mac: string, exp: string | undefined, sig: string | undefined, now = Date.now()): Verdict {
    if (!exp || !sig || !/^\d{1,12}$/.test(exp)) return "invalid";
    const want = Buffer.from(this.sign(purpose, mac, Number(exp)));
    const got = Buffer.from(sig);
    if (want.length !== got.length || !timingSafeEqual(want, got)) return "invalid";
    return Number(exp) * 1000 < now ? "expired" : "ok";
  }
}
