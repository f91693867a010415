import { createReadStream } from "node:fs";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { Readable } from "node:stream";
import * as openpgp from "openpgp";
import type { Logger } from "../log.ts";

/**
 * Why a file was not accepted: the key itself could not be had (`key`), the signature names a key we do not
 * have even after a refresh (`signer`), or the bytes do not match the signature (`signature`).
 */
export class VerificationError extends Error {
  override name = "VerificationError";
  constructor(
    message: string,
    readonly kind: "key" | "signer" | "signature",
  ) {
    super(message);
  }
}

export interface SigningKeyOptions {
  /** Armored (or binary) key file; when set it is the only source. */
  file?: string | undefined;
  url: string;
  /** Pinned primary key fingerprint, upper-case hex. */
  fingerprint: string;
  /** Where a key fetched from `url` is kept, so an offline restart can still verify. */
  cacheFile: string;
  fetch: typeof fetch;
  log: Logger;
}

/**
 * The image signing key, accepted only when its primary fingerprint is the pinned one. Signing subkeys
 * rotate about yearly, so a signature by a subkey we do not know triggers one reload from the source.
 */
export class SigningKey {
  private key: Promise<openpgp.PublicKey> | undefined;
  private readonly refreshedFor = new Set<string>();

  constructor(private readonly opts: SigningKeyOptions) {}

  private get source(): string {
    return this.opts.file ?? this.opts.url;
  }

  get(): Promise<openpgp.PublicKey> {
    return this.key ?? this.remember(this.load(true));
  }

  /** Re-reads the key from its source (never the cache); callers after this share the reload. */
  refresh(): Promise<openpgp.PublicKey> {
    return this.remember(this.load(false));
  }

  /** Keeps a load for later callers, but forgets a failed one so the next call tries again. */
  private remember(p: Promise<openpgp.PublicKey>): Promise<openpgp.PublicKey> {
    this.key = p;
    p.catch(() => {
      if (this.key === p) this.key = undefined;
    });
    return p;
  }

  private async load(allowCache: boolean): Promise<openpgp.PublicKey> {
    if (this.opts.file) return this.pick(await readFile(this.opts.file), this.opts.file);
    if (allowCache) {
      const cached = await readFile(this.opts.cacheFile).catch(() => undefined);
      if (cached) {
        try {
          return await this.pick(cached, this.opts.cacheFile);
        } catch (err) {
          this.opts.log.warn({ err, file: this.opts.cacheFile }, "cached signing key unusable, fetching it again");
        }
      }
    }
    const res = await this.opts.fetch(this.opts.url, { redirect: "follow" });
    if (!res.ok) throw new VerificationError(`signing key ${this.opts.url}: HTTP ${res.status}`, "key");
    const bytes = new Uint8Array(await res.arrayBuffer());
    const key = await this.pick(bytes, this.opts.url);
    await mkdir(dirname(this.opts.cacheFile), { recursive: true });
    const tmp = `${this.opts.cacheFile}.tmp`;
    await writeFile(tmp, key.armor());
    await rename(tmp, this.opts.cacheFile);
    return key;
  }

  private async pick(bytes: Uint8Array, from: string): Promise<openpgp.PublicKey> {
    const text = Buffer.from(bytes).toString("utf8");
    let keys: openpgp.Key[];
    try {
      keys = text.includes("-----BEGIN PGP")
        ? await openpgp.readKeys({ armoredKeys: text })
        : await openpgp.readKeys({ binaryKeys: bytes });
    } catch (err) {
      throw new VerificationError(`signing key ${from}: not an OpenPGP key (${(err as Error).message})`, "key");
    }
    const want = this.opts.fingerprint;
    const key = keys.find((k) => k.getFingerprint().toUpperCase() === want);
    if (!key) {
      const got = keys.map((k) => k.getFingerprint().toUpperCase()).join(", ");
      throw new VerificationError(`signing key ${from} has fingerprint ${got}, expected the pinned ${want}`, "key");
    }
    return key.toPublic();
  }

  /** Checks a detached signature over a file, streaming it from disk. Throws VerificationError. */
  verifyFile(path: string, signatureBytes: Uint8Array, name: string): Promise<{ keyId: string }> {
    // Large reads: openpgp.js pays per chunk, and 1 MiB chunks verify at close to raw hashing speed.
    const stream = Readable.toWeb(
      createReadStream(path, { highWaterMark: 1 << 20 }),
    ) as unknown as ReadableStream<Uint8Array>;
    return this.verifyStream(stream, signatureBytes, name);
  }

  /**
   * Checks a detached signature over a byte stream. The stream is cancelled on any failure, so a producer
   * writing into it is released instead of waiting on backpressure. Throws VerificationError.
   */
  async verifyStream(
    stream: ReadableStream<Uint8Array>,
    signatureBytes: Uint8Array,
    name: string,
  ): Promise<{ keyId: string }> {
    try {
      return await this.check(stream, signatureBytes, name);
    } catch (err) {
      await stream.cancel(err).catch(() => {});
      throw err;
    }
  }

  private async check(
    stream: ReadableStream<Uint8Array>,
    signatureBytes: Uint8Array,
    name: string,
  ): Promise<{ keyId: string }> {
    let signature: openpgp.Signature;
    try {
      const text = Buffer.from(signatureBytes).toString("latin1");
      signature = text.startsWith("-----BEGIN PGP")
        ? await openpgp.readSignature({ armoredSignature: text })
        : await openpgp.readSignature({ binarySignature: signatureBytes });
    } catch (err) {
      throw new VerificationError(
        `${name}: signature is not an OpenPGP signature (${(err as Error).message})`,
        "signature",
      );
    }
    const issuers = [...signature.getSigningKeyIDs()];
    const ids = issuers.map((id) => id.toHex().toUpperCase());
    let key = await this.get();
    if (!issuers.some((id) => key.getKeys(id).length > 0)) {
      const unseen = ids.filter((id) => !this.refreshedFor.has(id));
      if (unseen.length > 0) {
        for (const id of unseen) this.refreshedFor.add(id);
        this.opts.log.info(
          { file: name, keyIds: ids, source: this.source },
          "signature by an unknown subkey, refreshing the signing key",
        );
        key = await this.refresh();
      }
      if (!issuers.some((id) => key.getKeys(id).length > 0)) {
        throw new VerificationError(
          `${name}: signed by key ID ${ids.join(", ") || "(none)"}, which is not a subkey of the pinned signing key ${this.opts.fingerprint} (key reloaded from ${this.source})`,
          "signer",
        );
      }
    }
    try {
      const message = await openpgp.createMessage({ binary: stream });
      const result = await openpgp.verify({
        message,
        signature,
        verificationKeys: key,
        format: "binary",
        expectSigned: true,
      });
      // The signature settles only once the data stream has been read to the end.
      const reader = (result.data as ReadableStream<Uint8Array>).getReader();
      while (!(await reader.read()).done);
      const first = result.signatures[0];
      if (!first) throw new Error("no signature");
      await first.verified;
      return { keyId: first.keyID.toHex().toUpperCase() };
    } catch (err) {
      throw new VerificationError(`${name}: bad signature (${(err as Error).message})`, "signature");
    }
  }
}
