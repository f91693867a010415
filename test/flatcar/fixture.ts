import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import * as openpgp from "openpgp";
import { IMAGE, KERNEL_SIG_FALLBACK, PXE_INITRD, PXE_KERNEL } from "../../src/flatcar/release.ts";
import type { EventInput, EventSink } from "../../src/model/event.ts";

export interface TestKey {
  privateKey: openpgp.PrivateKey;
  armoredPublic: string;
  fingerprint: string;
}

/** A signing key shaped like Flatcar's: a certify-only primary and a signing subkey. */
export async function makeKey(name = "Test Buildbot"): Promise<TestKey> {
  const { privateKey } = await openpgp.generateKey({
    type: "ecc",
    userIDs: [{ name, email: "buildbot@example.org" }],
    subkeys: [{ sign: true }],
    // An hour old, so a subkey added by rotate() is strictly newer and becomes the signing subkey.
    date: new Date(Date.now() - 3600_000),
    format: "object",
  });
  return {
    privateKey,
    armoredPublic: privateKey.toPublic().armor(),
    fingerprint: privateKey.getFingerprint().toUpperCase(),
  };
}

/** Adds a new signing subkey, as the yearly rotation does; the primary fingerprint stays. */
export async function rotate(key: TestKey): Promise<TestKey> {
  const privateKey = await key.privateKey.addSubkey({ sign: true });
  return { privateKey, armoredPublic: privateKey.toPublic().armor(), fingerprint: key.fingerprint };
}

export async function detachedSign(key: TestKey, data: Uint8Array): Promise<Uint8Array> {
  const signingKey = await key.privateKey.getSigningKey();
  // Sign with the newest signing subkey only, the way a build signs with this year's subkey.
  const sig = await openpgp.sign({
    message: await openpgp.createMessage({ binary: data }),
    signingKeys: key.privateKey,
    signingKeyIDs: [signingKey.getKeyID()],
    detached: true,
    format: "binary",
  });
  return sig as Uint8Array;
}

/**
 * A small fake release: kernel, initrd and image with detached binary signatures. The kernel's signature
 * is published only under the fallback name, as the real tree does for the PXE kernel link.
 */
export async function buildRelease(
  key: TestKey,
  version: string,
  sizes = { kernel: 40_000, initrd: 30_000, image: 120_000 },
) {
  const files: Record<string, Uint8Array> = {
    [PXE_KERNEL]: randomBytes(sizes.kernel),
    [PXE_INITRD]: randomBytes(sizes.initrd),
    [IMAGE]: randomBytes(sizes.image),
  };
  const out: Record<string, Uint8Array> = { ...files };
  out[KERNEL_SIG_FALLBACK] = await detachedSign(key, files[PXE_KERNEL]!);
  out[`${PXE_INITRD}.sig`] = await detachedSign(key, files[PXE_INITRD]!);
  out[`${IMAGE}.sig`] = await detachedSign(key, files[IMAGE]!);
  out["version.txt"] = Buffer.from(
    `FLATCAR_BUILD=${version.split(".")[0]}\nFLATCAR_VERSION=${version}\nFLATCAR_VERSION_ID=${version}\n`,
  );
  return out;
}

type Entry = Uint8Array | { redirect: string };

/** A release origin on 127.0.0.1 that counts requests, answers Range, redirects, and can cut a transfer. */
export class Origin {
  readonly tree = new Map<string, Entry>();
  readonly hits = new Map<string, number>();
  readonly ranges: { path: string; range: string }[] = [];
  /** path → bytes sent before the connection is dropped (once). */
  readonly cutOnce = new Map<string, number>();
  /** path → HTTP status answered once instead of the file. */
  readonly failOnce = new Map<string, number>();
  /** Paths answered in full (200) even when a Range is asked, like an origin without Range support. */
  readonly ignoreRange = new Set<string>();
  /** path → body bytes handed to the socket (paced answers only). */
  readonly sent = new Map<string, number>();
  /** When set, bodies go out in 32 KiB pieces this many ms apart (so transfers overlap in time). */
  pace = 0;
  private server: Server | undefined;
  url = "";

  addRelease(channel: string, board: string, version: string, files: Record<string, Uint8Array>): void {
    for (const [name, data] of Object.entries(files)) this.tree.set(`/${channel}/${board}/${version}/${name}`, data);
  }

  setCurrent(channel: string, board: string, version: string, dir = "current"): void {
    this.tree.set(`/${channel}/${board}/${dir}/version.txt`, {
      redirect: `/${channel}/${board}/${version}/version.txt`,
    });
  }

  count(path: string): number {
    return this.hits.get(path) ?? 0;
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
      this.hits.set(path, this.count(path) + 1);
      const fail = this.failOnce.get(path);
      if (fail !== undefined) {
        this.failOnce.delete(path);
        return void res.writeHead(fail).end();
      }
      const entry = this.tree.get(path);
      if (!entry) return void res.writeHead(404).end();
      if (!(entry instanceof Uint8Array)) return void res.writeHead(302, { location: entry.redirect }).end();
      const range = req.headers.range;
      let start = 0;
      if (range && !this.ignoreRange.has(path)) {
        this.ranges.push({ path, range });
        const m = /^bytes=(\d+)-$/.exec(range);
        if (!m || Number(m[1]) >= entry.length) {
          return void res.writeHead(416, { "content-range": `bytes */${entry.length}` }).end();
        }
        start = Number(m[1]);
        res.writeHead(206, {
          "content-length": entry.length - start,
          "content-range": `bytes ${start}-${entry.length - 1}/${entry.length}`,
        });
      } else {
        res.writeHead(200, { "content-length": entry.length, "accept-ranges": "bytes" });
      }
      const cut = this.cutOnce.get(path);
      if (cut !== undefined) {
        this.cutOnce.delete(path);
        // Drop the connection once the client has had time to take what was sent.
        res.write(entry.subarray(start, start + cut), () => setTimeout(() => res.socket?.destroy(), 50));
        return;
      }
      if (this.pace === 0) return void res.end(entry.subarray(start));
      let at = start;
      const next = () => {
        if (res.destroyed) return;
        if (at >= entry.length) return void res.end();
        const piece = entry.subarray(at, at + 32 * 1024);
        at += piece.length;
        this.sent.set(path, (this.sent.get(path) ?? 0) + piece.length);
        res.write(piece, () => setTimeout(next, this.pace));
      };
      next();
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

export class CollectingSink implements EventSink {
  readonly events: EventInput[] = [];
  append(event: EventInput): void {
    this.events.push(event);
  }
  kinds(): string[] {
    return this.events.map((e) => e.kind);
  }
}
