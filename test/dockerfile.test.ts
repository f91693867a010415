import { execFile } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from "node:fs";
import { join, relative } from "node:path";
import { promisify } from "node:util";
import picomatch from "picomatch";
import { afterAll, describe, expect, it } from "vitest";
import { databaseEnv } from "./helpers/database.ts";
import { freePort, tempDir } from "./helpers/kindling.ts";

/**
 * No container engine runs on the development machines and no registry serves the `node` base image, so the
 * image itself is not built here. What the Dockerfile relies on is checked instead: every file it copies is in
 * the build context (not dropped by .dockerignore), and the image's steps (build dist/, drop the sources, add
 * bin/ profiles/ ipxe/) leave a tree that starts, serves and passes its own HEALTHCHECK command.
 */
const REPO = join(import.meta.dirname, "..");
const dockerfile = readFileSync(join(REPO, "Dockerfile"), "utf8").replace(/\\\n/g, " ");
const instructions = dockerfile
  .split("\n")
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith("#"));
/** Sources of the build stage's COPY lines (not `--from=`): paths in the build context. */
const copied = instructions
  .filter((l) => /^COPY\s/.test(l) && !l.includes("--from="))
  .flatMap((l) => l.split(/\s+/).slice(1, -1));
const ignored = readFileSync(join(REPO, ".dockerignore"), "utf8")
  .split("\n")
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith("#"));

const filesUnder = (path: string): string[] =>
  statSync(join(REPO, path)).isDirectory()
    ? (readdirSync(join(REPO, path), { recursive: true }) as string[])
        .map((f) => join(path, f))
        .filter((f) => statSync(join(REPO, f)).isFile())
    : [path];

describe("the Dockerfile's build context", () => {
  it("copies only files that exist and that .dockerignore keeps", () => {
    expect(copied).toEqual(expect.arrayContaining(["package.json", "src", "bin", "profiles", "ipxe"]));
    const isIgnored = picomatch(ignored, { dot: true });
    for (const source of copied) {
      expect(existsSync(join(REPO, source)), source).toBe(true);
      // Docker drops a path when a pattern matches it or any folder above it.
      const dropped = filesUnder(source).filter((f) => {
        const parts = relative(".", f).split("/");
        return parts.some((_, i) => isIgnored(parts.slice(0, i + 1).join("/")));
      });
      expect(dropped, `${source}: dropped by .dockerignore`).toEqual([]);
    }
  });

  it("names an entrypoint and a health check that exist", () => {
    expect(instructions).toContain('ENTRYPOINT ["node", "/opt/kindling/bin/kindling.js"]');
    expect(instructions.find((l) => l.startsWith("HEALTHCHECK"))).toContain('"healthcheck"');
    expect(existsSync(join(REPO, "bin/kindling.js"))).toBe(true);
  });
});

describe("the image's file layout", () => {
  const root = tempDir("kindling-image-");
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it("builds dist/, runs without src/, serves, and passes its HEALTHCHECK command", async () => {
    const app = join(root, "opt/kindling");
    mkdirSync(app, { recursive: true });
    // The build stage: package files, tsconfig*, src/ → `npm run build`; then src/ and tsconfig* are removed.
    for (const f of ["package.json", "package-lock.json", "tsconfig.json", "tsconfig.build.json", "src"])
      cpSync(join(REPO, f), join(app, f), { recursive: true });
    symlinkSync(join(REPO, "node_modules"), join(app, "node_modules"));
    const run = promisify(execFile);
    await run("npm", ["run", "build"], { cwd: app, timeout: 180_000 });
    for (const f of ["src", "tsconfig.json", "tsconfig.build.json"]) rmSync(join(app, f), { recursive: true });
    for (const f of ["bin", "profiles", "ipxe"]) cpSync(join(REPO, f), join(app, f), { recursive: true });

    const data = join(root, "var/lib/kindling");
    const port = await freePort();
    const env = {
      ...process.env,
      NODE_ENV: "production",
      KINDLING_DATA_DIR: data,
      KINDLING_HTTP_HOST: "127.0.0.1",
      KINDLING_HTTP_PORT: String(port),
      KINDLING_TFTP_PORT: "0",
      KINDLING_DHCP_MODE: "off",
      KINDLING_ADVERTISE: "127.0.0.1",
      ...databaseEnv(data),
    };
    const { spawn } = await import("node:child_process");
    const serve = spawn(process.execPath, [join(app, "bin/kindling.js"), "serve"], { env, stdio: "pipe" });
    let out = "";
    serve.stdout.on("data", (d) => (out += d));
    serve.stderr.on("data", (d) => (out += d));
    try {
      const deadline = Date.now() + 30_000;
      let health = "";
      while (Date.now() < deadline) {
        health = await fetch(`http://127.0.0.1:${port}/healthz`)
          .then((r) => r.text())
          .catch(() => "");
        if (health) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(health, out).toContain("ok");
      // The HEALTHCHECK: `kindling healthcheck` finds the port from <dataDir>/serve.json.
      const check = await run(process.execPath, [join(app, "bin/kindling.js"), "healthcheck"], { env });
      expect(check.stdout + check.stderr).toMatch(/ok|healthy/i);
      // It ran the compiled JavaScript: there is no src/ to fall back on.
      expect(existsSync(join(app, "dist/cli.js"))).toBe(true);
    } finally {
      serve.kill("SIGTERM");
      await new Promise((r) => serve.once("exit", r));
    }
  }, 240_000);
});
