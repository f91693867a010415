import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { writeFileAtomic } from "../files/atomic.ts";
import { ConfigError } from "../model/errors.ts";

const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const FORMAT = "k1";

/** A key's id: derived from the key, so the same key always has the same id wherever it comes from. */
export const keyIdOf = (key: Buffer): string => createHash("sha256").update(key).digest("hex").slice(0, 16);

export class KeyError extends Error {
  override name = "KeyError";
}

/**
 * AES-256-GCM keys for BMC passwords. The newest key encrypts; every key still listed decrypts, so a rotation
 * never makes a stored password unreadable. Each ciphertext carries its key's id and is bound to its machine
 * (the MAC is the GCM additional data): a ciphertext copied to another row does not decrypt.
 */
export class Keyring {
  private readonly keys: Map<string, Buffer>;
  readonly currentId: string;

  constructor(keys: readonly Buffer[]) {
    if (keys.length === 0) throw new KeyError("a keyring needs at least one key");
    for (const k of keys)
      if (k.length !== KEY_BYTES) throw new KeyError(`a BMC key must be ${KEY_BYTES} bytes, got ${k.length}`);
    this.keys = new Map(keys.map((k) => [keyIdOf(k), k]));
    this.currentId = keyIdOf(keys[keys.length - 1]!);
  }

  get ids(): string[] {
    return [...this.keys.keys()];
  }

  encrypt(plaintext: string, mac: string): string {
    const iv = randomBytes(IV_BYTES);
    const c = createCipheriv("aes-256-gcm", this.keys.get(this.currentId)!, iv);
    c.setAAD(Buffer.from(mac));
    const body = Buffer.concat([c.update(plaintext, "utf8"), c.final()]);
    return [FORMAT, this.currentId, Buffer.concat([iv, c.getAuthTag(), body]).toString("base64")].join(":");
  }

  /** The key id a ciphertext was made with (to find records a rotation should re-encrypt). */
  static keyIdOf(ciphertext: string): string {
    return ciphertext.split(":")[1] ?? "";
  }

  decrypt(ciphertext: string, mac: string): string {
    const [format, id, data] = ciphertext.split(":");
    if (format !== FORMAT || !id || !data) throw new KeyError("not a Kindling BMC ciphertext");
    const key = this.keys.get(id);
    if (!key) throw new KeyError(`the BMC password was encrypted with key ${id}, which this Kindling does not have`);
    const raw = Buffer.from(data, "base64");
    const d = createDecipheriv("aes-256-gcm", key, raw.subarray(0, IV_BYTES));
    d.setAAD(Buffer.from(mac));
    d.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    try {
      return Buffer.concat([d.update(raw.subarray(IV_BYTES + TAG_BYTES)), d.final()]).toString("utf8");
    } catch {
      throw new KeyError(`the BMC password of ${mac} does not decrypt with key ${id} (altered or moved)`);
    }
  }
}

const parseKey = (text: string, where: string): Buffer => {
  const key = Buffer.from(text.trim(), "base64");
  if (key.length !== KEY_BYTES || !/^[A-Za-z0-9+/]+=*$/.test(text.trim()))
    throw new ConfigError(`${where}: a BMC key is ${KEY_BYTES} bytes in base64 (openssl rand -base64 32)`);
  return key;
};

/** Where keys come from: `env` (current and old keys, base64) wins over the key file in the data dir. */
export interface KeySource {
  file: string;
  /** Base64 key that encrypts (KINDLING_BMC_KEY). */
  envKey?: string | undefined;
  /** Comma-separated base64 keys still readable (KINDLING_BMC_OLD_KEYS). */
  envOldKeys?: string | undefined;
}

/**
 * The key file holds one base64 key per line, oldest first; the last line encrypts. Created with one random
 * key, mode 0600, when absent. A key given by environment is used instead of the file's (the file is then
 * neither read for the current key nor written).
 */
export function loadKeyring(src: KeySource): Keyring {
  if (src.envKey) {
    const old = (src.envOldKeys ?? "")
      .split(",")
      .filter((s) => s.trim())
      .map((s) => parseKey(s, "KINDLING_BMC_OLD_KEYS"));
    return new Keyring([...old, parseKey(src.envKey, "KINDLING_BMC_KEY")]);
  }
  return new Keyring(readKeyFile(src.file));
}

function readKeyFile(file: string): Buffer[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    const key = randomBytes(KEY_BYTES);
    writeFileAtomic(file, `${key.toString("base64")}\n`, 0o600);
    return [key];
  }
  const lines = text.split("\n").filter((l) => l.trim());
  if (lines.length === 0) throw new ConfigError(`BMC key file ${file} is empty; delete it only if no BMC is set`);
  return lines.map((l, i) => parseKey(l, `BMC key file ${file} line ${i + 1}`));
}

/** Appends a fresh key to the key file (it encrypts from now on; the older ones stay readable). */
export function rotateKeyFile(file: string): Keyring {
  const keys = [...readKeyFile(file), randomBytes(KEY_BYTES)];
  writeFileAtomic(file, keys.map((k) => `${k.toString("base64")}\n`).join(""), 0o600);
  return new Keyring(keys);
}
