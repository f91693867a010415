import { execFile } from "node:child_process";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Signer } from "../../src/boot/sign.ts";
import { validateIgnition } from "../../src/ignition/index.ts";
import type { Origin } from "../flatcar/fixture.ts";
import { putLeaseIn } from "../helpers/database.ts";
import { type Running, startTestKindling, tempDir } from "../helpers/kindling.ts";
import { ipxeUntil, startWithRelease, VERSION } from "../helpers/release.ts";

const run = promisify(execFile);
let k: Running;
let origin: Origin;
let stop: () => Promise<void>;
const MAC = "52:54:00:7e:00:01";

beforeAll(async () => {
  ({ k, origin, stop } = await startWithRelease({ boot: { installDeadlineSeconds: 2 } }));
  await k.api("/profiles/install-sda", {
    method: "PUT",
    json: {
      flatcar: { channel: "stable" },
      install: { disk: "/dev/sda" },
      ignition: {
        butane:
          "variant: flatcar\nversion: 1.0.0\nstorage:\n  files:\n    - path: /etc/hostname\n      contents:\n        inline: '{{ hostname }}'\n",
      },
    },
  });
});
afterAll(() => stop());

const state = async (mac = MAC) => (await (await k.api(`/machines/${mac}`)).json()).state as string;
const curl = async (args: string[]) => (await run("curl", ["-sS", ...args], { encoding: "utf8" })).stdout;
/** The Ignition URL iPXE would hand the kernel. */
const ignitionUrlOf = (script: string) => /ignition\.config\.url=(\S+)/.exec(script)![1]!;
const dataUrlText = (u: string) => decodeURIComponent(u.slice(u.indexOf(",") + 1));

describe("install to disk, over real HTTP with a scripted installer", () => {
  // biome-ignore lint/suspicious/noExplicitAny: the installer JSON is read loosely
  let installer: Record<string, any>;
  let script: string;

  it("an assigned machine PXE-boots the installer with a signed Ignition URL", async () => {
    await k.api("/machines", { method: "POST", json: { mac: MAC, profile: "install-sda", hostname: "node-1" } });
    const boot = await ipxeUntil(k, `mac=${MAC}&arch=x86_64&platform=efi`, "kernel ");
    installer = JSON.parse(await curl([ignitionUrlOf(boot)]));
    expect(validateIgnition(installer).filter((d) => d.severity === "error")).toEqual([]);
    expect(installer.ignition.version).toBe("3.3.0");
    expect(installer.systemd.units[0]).toMatchObject({ name: "kindling-install.service", enabled: true });
    script = dataUrlText(installer.storage.files[0].contents.source);
    expect(script).toContain(
      `flatcar-install '-d' '/dev/sda' '-C' 'stable' '-V' '${VERSION}' '-B' 'amd64-usr' '-b' '${k.url}/assets/flatcar/stable/amd64-usr' '-i' '/tmp/kindling-final.ign'`,
    );
  });

  it("flatcar-install's exact URLs are answered by the mirror (HEAD and GET)", async () => {
    const base = `${k.url}/assets/flatcar/stable/amd64-usr`;
    for (const f of ["flatcar_production_image.bin.bz2", "flatcar_production_image.bin.bz2.sig"]) {
      expect(await curl(["-o", "/dev/null", "-w", "%{http_code}", "-I", `${base}/${VERSION}/${f}`])).toBe("200");
      const got = Buffer.from((await run("curl", ["-sf", `${base}/${VERSION}/${f}`], { encoding: "buffer" })).stdout);
      expect(got.equals(Buffer.from(origin.tree.get(`/stable/amd64-usr/${VERSION}/${f}`) as Uint8Array))).toBe(true);
    }
    expect(await curl([`${base}/current/version.txt`])).toContain(`FLATCAR_VERSION=${VERSION}`);
  });

  it("the generated install script runs: reports started, fetches the final config, installs, reports done, reboots", async () => {
    // flatcar-install and systemctl exist only on Flatcar: stand-ins record their arguments; the script,
    // curl and Kindling are real.
    const dir = tempDir();
    const bin = join(dir, "bin");
    mkdirSync(bin);
    writeFileSync(
      join(bin, "flatcar-install"),
      `#!/bin/bash\necho "$@" > ${dir}/install-args\ncp /tmp/kindling-final.ign ${dir}/final.ign\necho "wrote image to /dev/sda"\n`,
    );
    writeFileSync(join(bin, "systemctl"), `#!/bin/bash\necho "$@" > ${dir}/systemctl-args\n`);
    chmodSync(join(bin, "flatcar-install"), 0o755);
    chmodSync(join(bin, "systemctl"), 0o755);
    writeFileSync(join(dir, "install.sh"), script, { mode: 0o755 });
    await run("bash", [join(dir, "install.sh")], {
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
      timeout: 60_000,
    });

    expect(readFileSync(join(dir, "install-args"), "utf8")).toContain(`-V ${VERSION}`);
    expect(readFileSync(join(dir, "systemctl-args"), "utf8").trim()).toBe("reboot");
    expect(await state()).toBe("installed");
    const final = JSON.parse(readFileSync(join(dir, "final.ign"), "utf8"));
    expect(validateIgnition(final).filter((d) => d.severity === "error")).toEqual([]);
    expect(final.storage.files[0]).toMatchObject({ path: "/etc/hostname", contents: { source: "data:,node-1" } });
    expect(final.systemd.units.map((u: { name: string }) => u.name)).toContain("kindling-report.service");

    const kinds = (await (await k.api(`/events?mac=${MAC}`)).json()).map((e: { kind: string }) => e.kind).reverse();
    const story = kinds.filter((x: string) => x.startsWith("lifecycle.") || x.startsWith("ignition."));
    expect(story).toEqual([
      "ignition.served",
      "lifecycle.install-started",
      "ignition.served",
      "lifecycle.install-done",
    ]);
    const done = (await (await k.api(`/events?mac=${MAC}&kind=lifecycle.install-done`)).json())[0];
    expect(done.detail).toMatchObject({
      from: "installing",
      to: "installed",
      by: "report",
      log: expect.stringContaining("wrote image to /dev/sda"),
    });

    // The installed system's report unit, as systemd would run it (%% unescaped).
    const unit = final.systemd.units.find((u: { name: string }) => u.name === "kindling-report.service")
      .contents as string;
    const url = /ExecStart=.* "(.+)"/.exec(unit)![1]!.replace(/%%/g, "%");
    await curl(["-f", "-X", "POST", "--data-binary", "first-boot", url]);
    expect(await state()).toBe("running");
  });

  it("an installed machine's /ipxe sends it to its disk", async () => {
    const body = await (await fetch(`${k.url}/ipxe?mac=${MAC}`)).text();
    expect(body).toContain("booting from local disk");
    expect(body).not.toContain("kernel ");
  });

  it("reinstall puts it back in line: /ipxe boots the installer again", async () => {
    const r = await k.api(`/machines/${MAC}/reinstall`, { method: "POST" });
    expect(r.status).toBe(200);
    expect((await r.json()).state).toBe("ready");
    expect(await (await fetch(`${k.url}/ipxe?mac=${MAC}`)).text()).toContain("kernel ");
    const ev = (await (await k.api(`/events?mac=${MAC}&kind=lifecycle.reinstall`)).json())[0];
    expect(ev.detail).toMatchObject({ from: "running", to: "ready", by: "api" });
  });

  it("a reported failure keeps the log tail; an install that never reports is failed by the deadline", async () => {
    const boot = await (await fetch(`${k.url}/ipxe?mac=${MAC}`)).text();
    const report = dataUrlText(JSON.parse(await curl([ignitionUrlOf(boot)])).storage.files[0].contents.source).match(
      /REPORT='([^']+)'/,
    )![1]!;
    await curl(["-f", "-X", "POST", "--data-binary", "x", `${report}&kind=install-started`]);
    await curl(["-f", "-X", "POST", "--data-binary", "disk /dev/sda not found", `${report}&kind=install-failed`]);
    expect(await state()).toBe("failed");
    expect((await (await k.api(`/events?mac=${MAC}&kind=lifecycle.install-failed`)).json())[0].detail.log).toBe(
      "disk /dev/sda not found",
    );

    await curl(["-f", "-X", "POST", "--data-binary", "x", `${report}&kind=install-started`]);
    expect(await state()).toBe("installing");
    const deadline = Date.now() + 15_000;
    while ((await state()) === "installing" && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(await state()).toBe("failed");
    const ev = (await (await k.api(`/events?mac=${MAC}&kind=lifecycle.deadline`)).json())[0];
    expect(ev.detail).toMatchObject({ from: "installing", to: "failed", by: "watchdog" });
  });

  it("a machine installed through a group (no profile of its own) boots its disk afterwards", async () => {
    const mac = "52:54:00:7e:00:0a";
    await k.api("/groups", {
      method: "POST",
      json: { name: "rack-z", selector: { rack: "z" }, profile: "install-sda" },
    });
    // Registered by automation with its rack label and no profile: the group decides what it boots.
    await k.api("/machines", { method: "POST", json: { mac, labels: { rack: "z" } } });
    const boot = await ipxeUntil(k, `mac=${mac}`, "kernel ");
    const report = dataUrlText(JSON.parse(await curl([ignitionUrlOf(boot)])).storage.files[0].contents.source).match(
      /REPORT='([^']+)'/,
    )![1]!;
    expect(await state(mac)).toBe("discovered");
    await curl(["-f", "-X", "POST", "--data-binary", "x", `${report}&kind=install-started`]);
    expect(await state(mac)).toBe("installing");
    await curl(["-f", "-X", "POST", "--data-binary", "x", `${report}&kind=install-done`]);
    expect(await state(mac)).toBe("installed");
    // Its next power-on: the disk, not the installer again.
    const next = await (await fetch(`${k.url}/ipxe?mac=${mac}`)).text();
    expect(next).not.toContain("kernel ");
    expect(next).toMatch(/exit|sanboot/);
    expect((await k.api("/groups/rack-z", { method: "DELETE" })).status).toBe(204);
  });

  it("a group chosen by labels only the /ipxe request sent gives the Ignition too, through the whole install", async () => {
    const mac = "52:54:00:7e:00:0b";
    await k.api("/groups", {
      method: "POST",
      json: { name: "rack-q", selector: { rack: "q" }, profile: "install-sda", metadata: { role: "q-node" } },
    });
    // iPXE sends the label (from its script or a DHCP option); the machine record has none.
    const boot = await ipxeUntil(k, `mac=${mac}&rack=q`, "kernel ");
    const ignitionUrl = ignitionUrlOf(boot);
    expect(new URL(ignitionUrl).searchParams.get("group")).toBe("rack-q");
    const installer = JSON.parse(await curl([ignitionUrl]));
    const script = dataUrlText(installer.storage.files[0].contents.source);
    const final = script.match(/FINAL='([^']+)'/)?.[1] ?? script.match(/(http\S+\/ignition\/final\S+?)['"\s]/)?.[1];
    expect(final, script).toContain("group=rack-q");
    expect(JSON.parse(await curl([final!])).storage.files[0].path).toBe("/etc/hostname");
    // The group is signed: moved to another group (or dropped), the URL is refused.
    const moved = ignitionUrl.replace("group=rack-q", "group=rack-z");
    expect(await curl(["-o", "/dev/null", "-w", "%{http_code}", moved])).toBe("403");
    expect(await curl(["-o", "/dev/null", "-w", "%{http_code}", ignitionUrl.replace("&group=rack-q", "")])).toBe("403");
    expect((await k.api("/groups/rack-q", { method: "DELETE" })).status).toBe(204);
  });

  it("illegal transitions are 409 with the current state", async () => {
    const boot = await (await fetch(`${k.url}/ipxe?mac=${MAC}`)).text();
    const report = dataUrlText(JSON.parse(await curl([ignitionUrlOf(boot)])).storage.files[0].contents.source).match(
      /REPORT='([^']+)'/,
    )![1]!;
    const r = await fetch(`${report}&kind=first-boot`, { method: "POST" });
    expect(r.status).toBe(409);
    expect(await r.json()).toMatchObject({ state: "failed", event: "first-boot" });
    await k.api("/machines", { method: "POST", json: { mac: "52:54:00:7e:00:09" } });
    const re = await k.api("/machines/52:54:00:7e:00:09/reinstall", { method: "POST" });
    expect(re.status).toBe(409);
    expect((await re.json()).state).toBe("discovered");
    const bad = await fetch(`${report}&kind=exploded`, { method: "POST" });
    expect(bad.status).toBe(400);
  });

  it("forget deletes the machine; its next boot rediscovers it", async () => {
    expect((await k.api(`/machines/52:54:00:7e:00:09/forget`, { method: "POST" })).status).toBe(204);
    expect((await k.api(`/machines/52:54:00:7e:00:09`)).status).toBe(404);
    await fetch(`${k.url}/ipxe?mac=52:54:00:7e:00:09`);
    expect(await state("52:54:00:7e:00:09")).toBe("discovered");
  });
});

describe("signed URLs", () => {
  const M2 = "52:54:00:7e:00:02";
  let signer: Signer;
  beforeAll(async () => {
    signer = Signer.fromFile(join(k.dataDir, "signing-key"));
    await k.api("/machines", { method: "POST", json: { mac: M2, profile: "install-sda" } });
  });
  const url = (path: string, q: string) => `${k.url}${path}?${q}`;

  it("a valid URL works, and survives a restart of the signer (key in the data dir)", async () => {
    const r = await fetch(url("/ignition", signer.query("ignition", M2, 60)));
    expect(r.status).toBe(200);
  });

  it.each([
    ["unsigned", () => `mac=${M2}`],
    ["expired", () => signer.query("ignition", M2, -10)],
    [
      "another machine's",
      () => signer.query("ignition", MAC, 60).replace(encodeURIComponent(MAC), encodeURIComponent(M2)),
    ],
    [
      "tampered expiry",
      () => signer.query("ignition", M2, 60).replace(/exp=(\d+)/, (_, e) => `exp=${Number(e) + 3600}`),
    ],
    ["signed for reports", () => signer.query("report", M2, 60)],
    ["another key's", () => new Signer(Buffer.alloc(32, 1)).query("ignition", M2, 60)],
  ])("%s URL → 403 and a counted refusal", async (_, q) => {
    const refused = async () => (await (await k.api(`/events?kind=ignition.refused&mac=${M2}`)).json()).length;
    const before = await refused();
    const r = await fetch(url("/ignition", q()));
    expect(r.status).toBe(403);
    // The first refusal of its kind from this client is an event at once; the same again within the
    // minute is counted into one later row (limits/coalesce.ts).
    const after = await refused();
    expect(after).toBeGreaterThanOrEqual(Math.max(before, 1));
    expect(after).toBeLessThanOrEqual(before + 1);
  });

  it("report and final endpoints refuse unsigned requests too", async () => {
    expect((await fetch(url("/report", `mac=${M2}&kind=install-done`), { method: "POST" })).status).toBe(403);
    expect((await fetch(url("/ignition/final", signer.query("ignition", M2, 60)))).status).toBe(403);
    expect(await state(M2)).toBe("ready");
  });
});

describe("render preview", () => {
  it("shows an operator the machine's installed config, and names a missing template value", async () => {
    await k.api("/machines", {
      method: "POST",
      json: { mac: "52:54:00:7e:00:03", hostname: "prev", profile: "install-sda" },
    });
    const r = await k.api("/profiles/install-sda/render?mac=52-54-00-7e-00-03", { method: "POST" });
    expect(r.status).toBe(200);
    const body = await r.json();
    expect(body).toMatchObject({ kind: "installed", spec: "3.5.0" });
    expect(body.config.storage.files[0].contents.source).toBe("data:,prev");
    await k.api("/profiles/needs-meta", {
      method: "PUT",
      json: {
        flatcar: { channel: "stable" },
        ignition: {
          butane:
            "variant: flatcar\nversion: 1.0.0\npasswd:\n  users:\n    - name: core\n      ssh_authorized_keys: ['{{ metadata.ssh_key }}']\n",
        },
      },
    });
    const bad = await k.api("/profiles/needs-meta/render?mac=52:54:00:7e:00:03", { method: "POST" });
    expect(bad.status).toBe(500);
    expect((await bad.json()).error).toContain("metadata.ssh_key");
  });

  it("a profile whose Ignition cannot compile is refused at the API with the field and line", async () => {
    const r = await k.api("/profiles/broken", {
      method: "PUT",
      json: { localDisk: true, ignition: { butane: "variant: flatcar\nversion: 1.0.0\nstorage:\n  filez: []\n" } },
    });
    expect(r.status).toBe(400);
    const body = await r.json();
    expect(body.field).toBe("ignition.butane");
    expect(body.error).toMatch(/4:3/);
  });
});

describe("boot.requireLeasedIp (full DHCP mode)", () => {
  it("serves a machine's config only to the address leased to it", async () => {
    const strict = await startTestKindling({ dhcp: { mode: "full", port: 0 }, boot: { requireLeasedIp: true } });
    try {
      await strict.api("/profiles/raw", {
        method: "PUT",
        json: { boot: { kernel: "/k" }, ignition: { json: '{"ignition":{"version":"3.3.0"}}' } },
      });
      const signer = Signer.fromFile(join(strict.dataDir, "signing-key"));
      // Where this node's DHCP server would have written them (its file, or PostgreSQL).
      const lease = (mac: string, ip: string) =>
        putLeaseIn(strict.dataDir, { ip, mac, expiresAt: Date.now() + 60_000 });
      lease("52:54:00:7e:01:01", "127.0.0.1");
      lease("52:54:00:7e:01:02", "10.0.0.5");
      for (const mac of ["52:54:00:7e:01:01", "52:54:00:7e:01:02", "52:54:00:7e:01:03"])
        await strict.api("/machines", { method: "POST", json: { mac, profile: "raw" } });
      const get = (mac: string) => fetch(`${strict.url}/ignition?${signer.query("ignition", mac, 60)}`);
      expect((await get("52:54:00:7e:01:01")).status).toBe(200);
      const other = await get("52:54:00:7e:01:02");
      expect(other.status).toBe(403);
      expect(((await other.json()) as { error: string }).error).toContain("leased");
      expect((await get("52:54:00:7e:01:03")).status).toBe(403); // no lease at all
    } finally {
      await strict.stop();
    }
  });
});
