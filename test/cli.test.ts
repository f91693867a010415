import { execFile, spawn } from "node:child_process";
import { chmodSync, chownSync, copyFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { databaseEnv, TEST_ENGINE } from "./helpers/database.ts";
import { freePort, type Running, startTestKindling, TEST_TOKEN, tempDir } from "./helpers/kindling.ts";

const run = promisify(execFile);
const BIN = join(import.meta.dirname, "..", "bin", "kindling.js");

let k: Running;
beforeAll(async () => {
  k = await startTestKindling();
});
afterAll(() => k.stop());

/** Runs the real `kindling` command; resolves with its exit code and output either way. */
async function kindling(args: string[], env: Record<string, string> = {}) {
  try {
    const r = await run(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, timeout: 30_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
const client = (args: string[]) => kindling(["--server", k.url, "--token", TEST_TOKEN, ...args]);

/** Starts a long-running command (`kindling serve`, possibly behind a wrapper such as setpriv) and collects its output. */
function serve(command: string[], env: Record<string, string> = {}) {
  const [cmd, ...args] = command;
  const child = spawn(cmd!, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.on("exit", r));
  return {
    output: () => out,
    /** Waits, at most `ms`, for `text` in the output (or for the process to exit); returns the output so far. */
    async waitFor(text: string, ms = 20_000): Promise<string> {
      const deadline = Date.now() + ms;
      while (!out.includes(text) && Date.now() < deadline && child.exitCode === null)
        await new Promise((r) => setTimeout(r, 100));
      return out;
    },
    /** Sends SIGTERM; resolves with the exit code. */
    stop(): Promise<number | null> {
      child.kill("SIGTERM");
      return exited;
    },
  };
}

describe("kindling CLI (client commands over the API)", () => {
  it("machines add → list → show → assign → rm", async () => {
    const add = await client([
      "machines",
      "add",
      "52-54-00-12-34-56",
      "--profile",
      "flatcar-install",
      "--hostname",
      "n1",
      "--label",
      "rack=a1",
    ]);
    expect(add).toMatchObject({ code: 0 });
    expect(add.stdout).toContain("registered 52:54:00:12:34:56 (ready, profile flatcar-install)");

    const list = await client(["--json", "machines", "list"]);
    expect(JSON.parse(list.stdout)).toEqual([
      expect.objectContaining({ mac: "52:54:00:12:34:56", labels: { rack: "a1" } }),
    ]);
    const table = await client(["machines", "list", "--state", "ready"]);
    expect(table.stdout.split("\n")[0]).toMatch(/^MAC\s+HOSTNAME\s+ARCH\s+PROFILE\s+STATE/);
    expect(table.stdout).toContain("52:54:00:12:34:56");

    expect((await client(["machines", "show", "52:54:00:12:34:56"])).stdout).toContain("machine.registered");
    expect((await client(["machines", "assign", "52:54:00:12:34:56", "local-disk"])).stdout).toContain(
      "profile local-disk",
    );
    expect((await client(["profiles", "list"])).stdout).toContain("flatcar-live");
    expect((await client(["profiles", "show", "flatcar-install"])).stdout).toContain("channel: stable");
    expect((await client(["events", "--mac", "52:54:00:12:34:56"])).stdout).toContain("machine.updated");
    expect((await client(["machines", "reinstall", "52:54:00:12:34:56"])).stdout).toContain("is ready");
    const history = (await client(["machines", "history", "52:54:00:12:34:56"])).stdout.trimEnd().split("\n");
    expect(history[1]).toContain("machine.registered"); // oldest first
    expect(history.at(-1)).toContain("lifecycle.reinstall");
    expect((await client(["machines", "rm", "52:54:00:12:34:56"])).stdout).toContain("deleted");
    await client(["machines", "add", "52:54:00:12:34:57", "--loader", "grub"]);
    expect((await client(["machines", "show", "52:54:00:12:34:57"])).stdout).toMatch(/loader\s+grub/);
    expect((await client(["machines", "forget", "52:54:00:12:34:57"])).stdout).toContain("forgot 52:54:00:12:34:57");
  });

  it.each([
    [["machines", "add", "zz"], /400 mac: not a MAC address/],
    [["machines", "show", "52:54:00:99:99:99"], /404/],
    [["machines", "add", "52:54:00:99:99:98", "--label", "novalue"], /--label expects key=value/],
    [["machines", "assign", "52:54:00:99:99:99", "local-disk"], /404/],
    [["machines", "history", "52:54:00:99:99:99"], /404 machine 52:54:00:99:99:99 not found/],
  ])("%j fails with a clear message and exit 1", async (args, message) => {
    const r = await client(args);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toContain("    at "); // no stack trace
  });

  it("says so when the server is unreachable or no token can be found", async () => {
    const port = await freePort();
    const down = await kindling([
      "--server",
      `http://127.0.0.1:${port}`,
      "--token",
      "x".repeat(20),
      "machines",
      "list",
    ]);
    expect(down.code).toBe(1);
    expect(down.stderr).toContain(`cannot reach Kindling at http://127.0.0.1:${port}`);
    const noToken = await kindling(["--server", k.url, "--data-dir", tempDir(), "machines", "list"], {
      KINDLING_API_TOKEN: "",
    });
    expect(noToken.code).toBe(1);
    expect(noToken.stderr).toContain("no API token");
  });
});

describe("kindling serve", () => {
  it("starts with defaults in a fresh data dir, writes a 0600 token, serves /boot.ipxe, stops on SIGTERM", async () => {
    const dataDir = tempDir();
    const port = await freePort();
    const server = serve(
      [
        process.execPath,
        BIN,
        "--data-dir",
        dataDir,
        "serve",
        "--http-port",
        String(port),
        "--http-host",
        "127.0.0.1",
        "--tftp-port",
        "0",
        "--dhcp-mode",
        "off",
      ],
      {
        KINDLING_API_TOKEN: "",
        ...databaseEnv(dataDir),
      },
    );
    const out = await server.waitFor("HTTP listening");
    expect(out).toContain(`generated an API token; it is in ${dataDir}/api-token`);
    expect(statSync(join(dataDir, "api-token")).mode & 0o777).toBe(0o600);
    expect(await (await fetch(`http://127.0.0.1:${port}/boot.ipxe`)).text()).toContain("#!ipxe");
    const token = readFileSync(join(dataDir, "api-token"), "utf8").trim();
    expect(
      (await fetch(`http://127.0.0.1:${port}/api/v1/machines`, { headers: { authorization: `Bearer ${token}` } }))
        .status,
    ).toBe(200);
    expect(await server.stop()).toBe(0);
  });

  it.each([
    [["--http-port", "99999"], /invalid config: http\.port: .* \(from flag --http-port\)/],
    [["--dhcp-mode", "sometimes"], /invalid config: dhcp\.mode/],
  ])("bad config %j stops start-up naming the key", async (flags, message) => {
    const r = await kindling(["--data-dir", tempDir(), "serve", ...flags]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(message);
  });

  it("a port in use is explained; --strict-listeners makes it fatal", async () => {
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, "127.0.0.1", r));
    const port = (busy.address() as { port: number }).port;
    const dataDir = tempDir();
    const r = await kindling(
      [
        "--data-dir",
        dataDir,
        "serve",
        "--http-host",
        "127.0.0.1",
        "--http-port",
        String(port),
        "--tftp-port",
        "0",
        "--dhcp-mode",
        "off",
        "--strict-listeners",
      ],
      databaseEnv(dataDir),
    );
    busy.close();
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `HTTP on 127.0.0.1:${port}: address in use by another process (stop it, or set --http-port; 0 disables it)`,
    );
  });
});

describe("kindling healthcheck", () => {
  it("finds the serve holding the data dir on the port it bound, and says when none runs", async () => {
    const dataDir = tempDir();
    const port = await freePort();
    const server = serve(
      [process.execPath, BIN, "--data-dir", dataDir, "serve", "--http-host", "127.0.0.1", "--dhcp-port", "0"],
      { KINDLING_HTTP_PORT: String(port), KINDLING_TFTP_PORT: "0", KINDLING_API_TOKEN: "", ...databaseEnv(dataDir) },
    );
    try {
      await server.waitFor("HTTP listening");
      const ok = await kindling(["--data-dir", dataDir, "healthcheck"]);
      expect(ok).toMatchObject({ code: 0 });
      expect(ok.stdout).toContain(`http://127.0.0.1:${port}/healthz`);
    } finally {
      await server.stop();
    }
    const down = await kindling(["--data-dir", dataDir, "healthcheck"]);
    expect(down.code).toBe(1);
    expect(down.stderr).toContain(`no kindling serve is running on data dir ${dataDir}`);
  });
});

describe("npm start as an ordinary user", () => {
  it("with a file capability on node (as the container image sets it) binds a low port as nobody", async () => {
    const dir = tempDir();
    chmodSync(dir, 0o755);
    const node = join(dir, "node");
    copyFileSync(process.execPath, node);
    chmodSync(node, 0o755);
    await run("setcap", ["cap_net_bind_service=+ep", node]);
    const dataDir = join(dir, "data");
    mkdirSync(dataDir);
    chownSync(dataDir, 65534, 65534);
    const lowPort = 900 + Math.floor(Math.random() * 90); // a port below 1024 that nothing else here uses
    const server = serve(
      [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        node,
        BIN,
        "--data-dir",
        dataDir,
        "serve",
        "--http-port",
        "0",
        "--dhcp-port",
        "0",
        "--tftp-host",
        "127.0.0.1",
        "--tftp-port",
        String(lowPort),
      ],
      { KINDLING_API_TOKEN: "", HOME: dataDir, ...databaseEnv(dataDir) },
    );
    try {
      const out = await server.waitFor("tftp listening", 30_000);
      expect(out).toContain(`"port":${lowPort}`);
      expect(out).not.toContain("permission denied");
    } finally {
      await server.stop();
    }
  });

  it("serves HTTP although ports 67, 69 and 4011 are refused, saying why and what to set", async () => {
    const dataDir = tempDir();
    chownSync(dataDir, 65534, 65534); // nobody
    const port = await freePort();
    // setpriv drops to nobody: binding ports below 1024 then fails with EACCES, as for a user's `npm start`.
    const server = serve(
      [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        process.execPath,
        BIN,
        "--data-dir",
        dataDir,
        "serve",
        "--http-port",
        String(port),
        "--http-host",
        "127.0.0.1",
      ],
      {
        KINDLING_API_TOKEN: "",
        HOME: dataDir,
        ...databaseEnv(dataDir),
      },
    );
    // DHCP starts last: once its refusal is printed, every listener has had its say.
    await server.waitFor("DHCP (proxy mode) on 0.0.0.0:67", 30_000);
    const out = server.output();
    try {
      expect(await (await fetch(`http://127.0.0.1:${port}/boot.ipxe`)).text()).toContain("#!ipxe");
      expect(out).toContain(
        "TFTP on 0.0.0.0:69: permission denied; ports below 1024 need root or CAP_NET_BIND_SERVICE (or set --tftp-port",
      );
      expect(out).toContain("DHCP (proxy mode) on 0.0.0.0:67: permission denied");
      expect(out).toContain("continuing without it");
    } finally {
      await server.stop();
    }
  });
});

describe("a DHCP interface that cannot be used", () => {
  it("is explained and the rest keep serving; --strict-listeners makes it fatal", async () => {
    const port = await freePort();
    const dataDir = tempDir();
    const args = [
      "--data-dir",
      dataDir,
      "serve",
      "--http-host",
      "127.0.0.1",
      "--http-port",
      String(port),
      "--tftp-port",
      "0",
      "--dhcp-mode",
      "full",
      "--dhcp-port",
      "16767",
    ];
    const config = join(tempDir(), "k.yaml");
    writeFileSync(config, "dhcp:\n  interfaces: [nosuch9]\n");
    const strict = await kindling(["--config", config, ...args, "--strict-listeners"], databaseEnv(dataDir));
    expect(strict.code).toBe(1);
    expect(strict.stderr).toContain("dhcp.interfaces: nosuch9 does not exist");

    const server = serve([process.execPath, BIN, "--config", config, ...args], databaseEnv(dataDir));
    const out = await server.waitFor("continuing without it");
    try {
      expect(out).toContain("nosuch9");
      expect(await (await fetch(`http://127.0.0.1:${port}/healthz`)).json()).toMatchObject({
        status: "ok",
        database: { engine: TEST_ENGINE, reachable: true },
      });
    } finally {
      await server.stop();
    }
  });
});
