/**
 * The GRUB path over a real TFTP client (tftp-hpa, which asks like GRUB: octet mode, blksize 1024): the static
 * grub.cfg, a machine's config rendered from its boot plan, the assets tree under the same names as HTTP, and
 * the signed loaders staged at start-up.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freeUdpPort, type Running, startTestKindling, tempDir } from "../helpers/kindling.ts";

const run = promisify(execFile);
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const MAC = "52:54:00:6a:00:01";
let k: Running;
let port: number;
const tmp = tempDir("kindling-grub-get-");
let gets = 0;

/**
 * One file with atftp (tftp-hpa's client would read the colons of a MAC as host:file), asking like GRUB:
 * blksize 1024 and tsize. Its bytes, or the client's error text.
 */
async function tftpGet(name: string): Promise<{ ok: true; data: Buffer } | { ok: false; error: string }> {
  const local = join(tmp, `get-${++gets}`);
  const args = ["--option", "blksize 1024", "--option", "tsize 0", "-g", "-r", name, "-l", local, "127.0.0.1"];
  try {
    await run("atftp", [...args, String(port)], { timeout: 30_000 });
    return { ok: true, data: readFileSync(local) };
  } catch (err) {
    return { ok: false, error: String((err as { stderr?: string }).stderr ?? err) };
  }
}

beforeAll(async () => {
  port = await freeUdpPort();
  const dataDir = tempDir();
  mkdirSync(join(dataDir, "assets", "e2e"), { recursive: true });
  writeFileSync(join(dataDir, "assets", "e2e", "vmlinuz"), Buffer.alloc(300_000, 7));
  writeFileSync(join(dataDir, "assets", "e2e", "initrd.gz"), Buffer.alloc(5000, 9));
  writeFileSync(join(dataDir, "outside-assets"), "secret");
  k = await startTestKindling({ tftp: { host: "127.0.0.1", port } }, dataDir);
});
afterAll(async () => {
  await k.stop();
  rmSync(tmp, { recursive: true, force: true });
});

describe("GRUB over TFTP", () => {
  it("grub/grub.cfg sources the machine's own config by $net_default_mac", async () => {
    const r = await tftpGet("/grub/grub.cfg");
    expect(r.ok && r.data.toString()).toContain("source /grub/machines/${net_default_mac}.cfg");
  });

  it("an unknown machine's config waits and retries; it is recorded as discovered via grub", async () => {
    const r = await tftpGet(`/grub/machines/${MAC}.cfg`);
    expect(r).toMatchObject({ ok: true });
    expect(r.ok && r.data.toString()).toMatch(
      /has no profile yet'\necho 'Kindling: asking again in 30 s'\nsleep 30\n$/,
    );
    const events = await (await k.api(`/events?mac=${MAC}`)).json();
    expect(events.map((e: { kind: string }) => e.kind).reverse()).toEqual(["machine.discovered", "grub.request"]);
    expect(events[1].detail.via).toBe("grub");
    expect(events[0].detail.outcome).toBe("wait");
  });

  it("a name that holds no MAC gets a wait and a refusal event, and no machine", async () => {
    const r = await tftpGet("/grub/machines/not-a-mac.cfg");
    expect(r.ok && r.data.toString()).toContain("echo 'Kindling: GRUB reported no usable MAC'\n");
    const refused = await (await k.api("/events?kind=grub.refused")).json();
    expect(refused[0]?.detail).toMatchObject({ mac: "not-a-mac", ip: "127.0.0.1" });
    expect((await k.api("/machines/not-a-mac")).status).toBeGreaterThanOrEqual(400);
  });

  it("an assigned machine's config boots the profile's kernel over TFTP with its signed Ignition URL", async () => {
    const put = await k.api("/profiles/grubbed", {
      method: "PUT",
      json: {
        loader: "grub",
        boot: { kernel: "/assets/e2e/vmlinuz", initrd: ["/assets/e2e/initrd.gz"], args: ["console=ttyS0"] },
        ignition: { json: '{"ignition":{"version":"3.4.0"}}' },
      },
    });
    expect(put.status).toBe(201);
    expect((await k.api(`/machines/${MAC}`, { method: "PATCH", json: { profile: "grubbed" } })).status).toBe(200);
    const r = await tftpGet(`grub/machines/${MAC}.cfg`);
    const cfg = r.ok ? r.data.toString() : "";
    const url = /'ignition\.config\.url=(http:\/\/127\.0\.0\.1:\d+\/ignition\?[^']+)'/.exec(cfg)?.[1];
    expect(cfg).toContain("linux '/assets/e2e/vmlinuz' 'console=ttyS0' 'ignition.config.url=");
    expect(cfg).toContain("initrd '/assets/e2e/initrd.gz'\nboot\n");
    expect(cfg).not.toContain("initrd=");
    // The URL GRUB hands the kernel is the one Kindling verifies.
    const ign = await fetch(url!);
    expect(ign.status).toBe(200);
    expect(await ign.json()).toMatchObject({ ignition: { version: "3.4.0" } });
  });

  it("a machine's own loader is stored, cleared with null, and a bad one is refused naming the field", async () => {
    const set = await k.api(`/machines/${MAC}`, { method: "PATCH", json: { loader: "ipxe" } });
    expect(set.status).toBe(200);
    expect(await set.json()).toMatchObject({ loader: "ipxe", profile: "grubbed" });
    const bad = await k.api(`/machines/${MAC}`, { method: "PATCH", json: { loader: "pxelinux" } });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain("loader");
    const cleared = await k.api(`/machines/${MAC}`, { method: "PATCH", json: { loader: null } });
    expect(await cleared.json()).toMatchObject({ loader: null });
  });

  it("kernel and initrd come over TFTP from the assets tree, byte for byte", async () => {
    const kernel = await tftpGet("/assets/e2e/vmlinuz");
    expect(kernel.ok && sha(kernel.data)).toBe(sha(readFileSync(join(k.dataDir, "assets", "e2e", "vmlinuz"))));
    const initrd = await tftpGet("assets/e2e/initrd.gz");
    expect(initrd.ok && initrd.data.length).toBe(5000);
  });

  it("the assets tree keeps its containment: no way out of it, nor to other files of the data dir", async () => {
    const up = await tftpGet("/assets/../outside-assets");
    expect(up.ok).toBe(false);
    expect(!up.ok && up.error).toMatch(/'\.\.' in file name/);
    expect((await tftpGet("/outside-assets")).ok).toBe(false);
    expect((await tftpGet("/assets/e2e/missing")).ok).toBe(false);
  });

  it("shim and the signed GRUB it loads are staged from Debian's packages under the names firmware asks for", async () => {
    const shim = await tftpGet("/shimx64.efi");
    expect(shim.ok && sha(shim.data)).toBe(sha(readFileSync("/usr/lib/shim/shimx64.efi.signed")));
    const grub = await tftpGet("grubx64.efi");
    expect(grub.ok && sha(grub.data)).toBe(sha(readFileSync("/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed")));
  });
});
