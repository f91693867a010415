import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { registerAssetsCommands } from "../../src/cli/assets.ts";
import { CliError } from "../../src/cli/client.ts";
import { Store } from "../../src/store/index.ts";
import { buildRelease, makeKey, Origin, type TestKey } from "./fixture.ts";

const V = "4610.0.0";
let key: TestKey;
let origin: Origin;
let work: string;
let dataDir: string;
let configFile: string;

beforeAll(async () => {
  key = await makeKey();
  work = await mkdtemp(join(tmpdir(), "kindling-flatcar-cli-"));
  dataDir = join(work, "data");
  await writeFile(join(work, "key.asc"), key.armoredPublic);
  origin = await new Origin().start();
  origin.addRelease("stable", "amd64-usr", V, await buildRelease(key, V));
  origin.setCurrent("stable", "amd64-usr", V);
  configFile = join(work, "kindling.yaml");
  await writeFile(
    configFile,
    `flatcar:\n  signingKey: ${join(work, "key.asc")}\n  signingFingerprint: "${key.fingerprint}"\n  keep: 1\n`,
  );
});
afterAll(async () => {
  await origin.close();
  await rm(work, { recursive: true, force: true });
});

/** The root program as src/cli.ts builds it (global --config/--data-dir/--json), with only the assets commands. */
async function kindling(...args: string[]): Promise<{ out: string; err: string }> {
  const program = new Command("kindling")
    .option("--config <file>")
    .option("--data-dir <dir>")
    .option("--json")
    .exitOverride();
  registerAssetsCommands(program);
  let out = "";
  let err = "";
  const o = vi.spyOn(process.stdout, "write").mockImplementation((s) => ((out += String(s)), true));
  const e = vi.spyOn(process.stderr, "write").mockImplementation((s) => ((err += String(s)), true));
  try {
    await program.parseAsync(["--config", configFile, "--data-dir", dataDir, ...args], { from: "user" });
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
  return { out, err };
}

describe("kindling assets", () => {
  it("sync resolves current, verifies, and prints plain progress lines when not on a terminal", async () => {
    const { out, err } = await kindling(
      "assets",
      "sync",
      "--channel",
      "stable",
      "--flatcar-origin",
      `${origin.url}/{channel}/{board}`,
    );
    expect(out).toContain(`verified Flatcar stable amd64-usr ${V} (current)`);
    expect(err).toMatch(/flatcar_production_image\.bin\.bz2 +100% 117\.2 KiB\/117\.2 KiB .*\/s ETA/);
    expect(err).not.toContain("\r");
    const store = Store.open(dataDir);
    try {
      expect((await store.events.list({})).map((e) => e.kind)).toEqual(
        expect.arrayContaining(["flatcar.sync.started", "flatcar.sync.done"]),
      );
    } finally {
      store.close();
    }
  });

  it("an unreachable origin names the cause and what to do instead (the old --origin spelling still works)", async () => {
    // A loopback port nobody listens on any more: the connection is refused without leaving the machine.
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const { port } = closed.address() as AddressInfo;
    await new Promise((r) => closed.close(r));
    const failed = kindling(
      "assets",
      "sync",
      "--channel",
      "beta",
      "--origin",
      `http://127.0.0.1:${port}/{channel}/{board}`,
    );
    await expect(failed).rejects.toThrow(CliError);
    const message = await failed.catch((e: Error) => e.message);
    expect(message).toContain("ECONNREFUSED");
    expect(message).toContain("--flatcar-origin");
    expect(message).toContain("kindling assets import");
  });

  it("list --json shows the release", async () => {
    const { out } = await kindling("--json", "assets", "list");
    expect(JSON.parse(out).releases).toMatchObject([{ channel: "stable", version: V, current: true }]);
  });

  it("import takes a hand-copied release; prune then keeps current and what profiles pin", async () => {
    for (const v of ["4500.0.0", "4505.0.0"]) {
      const usb = join(work, `usb-${v}`);
      await mkdir(usb);
      for (const [name, data] of Object.entries(
        await buildRelease(key, v, { kernel: 1000, initrd: 1000, image: 1000 }),
      ))
        await writeFile(join(usb, name), data);
      const { out } = await kindling("assets", "import", usb, "--channel", "stable");
      expect(out).toContain(`verified and imported Flatcar stable amd64-usr ${v}`);
    }
    const store = Store.open(dataDir);
    try {
      store.profiles.create({
        name: "pinned",
        description: "",
        flatcar: { channel: "stable", version: "4500.0.0", arch: "amd64" },
        kernelArgs: [],
        vars: {},
      });
    } finally {
      store.close();
    }
    const { out } = await kindling("assets", "prune");
    expect(out.trim()).toBe("removed stable amd64-usr 4505.0.0");
    const list = JSON.parse((await kindling("--json", "assets", "list")).out) as { releases: { version: string }[] };
    expect(list.releases.map((r) => r.version)).toEqual([V, "4500.0.0"]);
  });

  it("fails with one clear line when verification fails", async () => {
    const forged = await buildRelease(await makeKey("Mallory"), "4620.0.0", {
      kernel: 1000,
      initrd: 1000,
      image: 1000,
    });
    origin.addRelease("stable", "amd64-usr", "4620.0.0", forged);
    const run = kindling(
      "assets",
      "sync",
      "--channel",
      "stable",
      "--version",
      "4620.0.0",
      "--origin",
      `${origin.url}/{channel}/{board}`,
    );
    await expect(run).rejects.toThrow(CliError);
    await expect(run).rejects.toThrow(
      /flatcar_production_pxe\.vmlinuz: signed by key ID [0-9A-F]{16}, which is not a subkey of the pinned signing key/,
    );
  });
});
