import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Running, startTestKindling } from "../helpers/kindling.ts";

// Async on purpose: a synchronous child would block the event loop the server under test runs on.
const run = promisify(execFile);
let k: Running;
const SECRET = "TOP-SECRET-OUTSIDE-THE-ROOT";
const content = Buffer.from(Array.from({ length: 4096 }, (_, i) => i % 251));

beforeAll(async () => {
  k = await startTestKindling();
  const root = join(k.dataDir, "assets");
  mkdirSync(join(root, "sub"), { recursive: true });
  writeFileSync(join(root, "sub", "blob.bin"), content);
  writeFileSync(join(root, "ok.txt"), "ok\n");
  writeFileSync(join(root, "empty"), "");
  writeFileSync(join(k.dataDir, "secret.txt"), SECRET);
  symlinkSync(join(k.dataDir, "secret.txt"), join(root, "link-out"));
  symlinkSync(k.dataDir, join(root, "dir-out"));
  symlinkSync(join(root, "ok.txt"), join(root, "link-in"));
});
afterAll(() => k.stop());

/** A request line sent byte for byte, so no client normalises the path first. */
function rawGet(path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const port = Number(new URL(k.url).port);
    const sock = connect(port, "127.0.0.1", () =>
      sock.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`),
    );
    let data = "";
    sock.on("data", (d) => (data += d.toString("latin1")));
    sock.on("end", () =>
      resolve({ status: Number(data.split(" ")[1]), body: data.slice(data.indexOf("\r\n\r\n") + 4) }),
    );
    sock.on("error", reject);
  });
}

describe("/assets", () => {
  it("GET streams the file with length, type, ETag", async () => {
    const r = await fetch(`${k.url}/assets/sub/blob.bin`);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-length")).toBe("4096");
    expect(r.headers.get("accept-ranges")).toBe("bytes");
    expect(r.headers.get("etag")).toMatch(/^".+"$/);
    expect(Buffer.from(await r.arrayBuffer()).equals(content)).toBe(true);
  });

  it("curl downloads the same bytes (sha256)", async () => {
    const { stdout: out } = await run("curl", ["-sf", `${k.url}/assets/sub/blob.bin`], { encoding: "buffer" });
    expect(createHash("sha256").update(out).digest("hex")).toBe(createHash("sha256").update(content).digest("hex"));
  });

  it("HEAD gives the headers and no body", async () => {
    const r = await fetch(`${k.url}/assets/sub/blob.bin`, { method: "HEAD" });
    expect(r.status).toBe(200);
    expect(r.headers.get("content-length")).toBe("4096");
    expect((await r.arrayBuffer()).byteLength).toBe(0);
  });

  it.each([
    ["bytes=0-9", 0, 9],
    ["bytes=4090-", 4090, 4095],
    ["bytes=-6", 4090, 4095],
    ["bytes=100-99999", 100, 4095],
  ])("Range %s → 206 with the right slice", async (range, start, end) => {
    const r = await fetch(`${k.url}/assets/sub/blob.bin`, { headers: { range } });
    expect(r.status).toBe(206);
    expect(r.headers.get("content-range")).toBe(`bytes ${start}-${end}/4096`);
    expect(r.headers.get("content-length")).toBe(String(end - start + 1));
    expect(Buffer.from(await r.arrayBuffer()).equals(content.subarray(start, end + 1))).toBe(true);
  });

  it.each(["bytes=4096-", "bytes=5000-6000", "bytes=-0"])("unsatisfiable %s → 416 with */size", async (range) => {
    const r = await fetch(`${k.url}/assets/sub/blob.bin`, { headers: { range } });
    expect(r.status).toBe(416);
    expect(r.headers.get("content-range")).toBe("bytes */4096");
  });

  it("If-None-Match with the ETag → 304; If-Range with a stale ETag → whole file", async () => {
    const etag = (await fetch(`${k.url}/assets/sub/blob.bin`, { method: "HEAD" })).headers.get("etag")!;
    expect((await fetch(`${k.url}/assets/sub/blob.bin`, { headers: { "if-none-match": etag } })).status).toBe(304);
    const stale = await fetch(`${k.url}/assets/sub/blob.bin`, {
      headers: { range: "bytes=0-9", "if-range": '"stale"' },
    });
    expect(stale.status).toBe(200);
    expect((await stale.arrayBuffer()).byteLength).toBe(4096);
    const fresh = await fetch(`${k.url}/assets/sub/blob.bin`, { headers: { range: "bytes=0-9", "if-range": etag } });
    expect(fresh.status).toBe(206);
  });

  it("an empty file is a 200 with Content-Length 0", async () => {
    const r = await fetch(`${k.url}/assets/empty`);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-length")).toBe("0");
  });

  it("a symlink that stays inside the root is served", async () => {
    expect(await (await fetch(`${k.url}/assets/link-in`)).text()).toBe("ok\n");
  });

  it.each([
    "/assets/../secret.txt",
    "/assets/../../../../etc/passwd",
    "/assets/%2e%2e/secret.txt",
    "/assets/%2E%2E%2Fsecret.txt",
    "/assets/sub/..%2f..%2fsecret.txt",
    "/assets/..%5csecret.txt",
    "/assets/ok.txt%00.bin",
    "/assets/link-out",
    "/assets/dir-out/secret.txt",
    "/assets/sub/",
    "/assets/sub",
    "/assets//secret.txt",
    "/assets/./ok.txt",
    "/assets/%2e/ok.txt",
    "/assets/%zz",
    "/assets/",
  ])("refuses %s", async (path) => {
    const r = await rawGet(path);
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.status).toBeLessThan(500);
    expect(r.body).not.toContain(SECRET);
    expect(r.body).not.toContain("root:");
    expect(r.body).not.toContain("blob.bin"); // never a directory listing
  });

  it("curl --path-as-is with .. is refused too", async () => {
    const code = (
      await run("curl", [
        "-s",
        "--path-as-is",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        `${k.url}/assets/../secret.txt`,
      ])
    ).stdout;
    expect(Number(code)).toBeGreaterThanOrEqual(400);
  });
});
