import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freeUdpPort, type Running, startTestKindling } from "./helpers/kindling.ts";

const run = promisify(execFile);
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
let k: Running;
let tftpPort: number;

beforeAll(async () => {
  tftpPort = await freeUdpPort();
  k = await startTestKindling({ tftp: { host: "127.0.0.1", port: tftpPort } });
});
afterAll(() => k.stop());

describe("one process serves the boot chain", () => {
  it("TFTP serves Debian's iPXE binaries by default, and each transfer is an event", async () => {
    const { stdout } = await run(
      "curl",
      ["-sf", "--tftp-blksize", "1468", `tftp://127.0.0.1:${tftpPort}/undionly.kpxe`],
      { encoding: "buffer" },
    );
    expect(sha(stdout)).toBe(sha(readFileSync("/usr/lib/ipxe/undionly.kpxe")));
    const deadline = Date.now() + 5000;
    let events: { detail: { file?: string } }[] = [];
    while (Date.now() < deadline && events.length === 0) {
      events = await (await k.api("/events?kind=tftp.transfer")).json();
      if (events.length === 0) await new Promise((r) => setTimeout(r, 50));
    }
    expect(events[0]?.detail.file).toContain("undionly.kpxe");
    expect(k.tftp?.stats().transfers).toBe(1);
  });

  it("TFTP serves ipxe.efi although Debian ships it as a link out of /usr/lib/ipxe (staged at start-up)", async () => {
    const { stdout } = await run("curl", ["-sf", `tftp://127.0.0.1:${tftpPort}/ipxe.efi`], { encoding: "buffer" });
    expect(sha(stdout)).toBe(sha(readFileSync("/usr/lib/ipxe/ipxe.efi")));
  });

  it("UEFI HTTP Boot gets the same EFI binary over HTTP at /ipxe-bin/", async () => {
    const r = await fetch(`${k.url}/ipxe-bin/ipxe.efi`);
    expect(r.status).toBe(200);
    expect(sha(new Uint8Array(await r.arrayBuffer()))).toBe(sha(readFileSync("/usr/lib/ipxe/ipxe.efi")));
    expect((await fetch(`${k.url}/ipxe-bin/../kindling.db`)).status).toBeGreaterThanOrEqual(400);
  });
});

describe("boot story attribution", () => {
  it("TFTP and asset downloads from a client's IP join the MAC it last booted as", async () => {
    await fetch(`${k.url}/ipxe?mac=52:54:00:ab:00:01`); // from 127.0.0.1
    await run("curl", ["-sf", "-o", "/dev/null", `tftp://127.0.0.1:${tftpPort}/undionly.kpxe`]);
    await fetch(`${k.url}/ipxe-bin/ipxe.efi`).then((r) => r.arrayBuffer());
    await fetch(`${k.url}/ipxe-bin/ipxe.efi`, { headers: { range: "bytes=0-9" } }).then((r) => r.arrayBuffer()); // a partial fetch is not a new step
    const deadline = Date.now() + 5000;
    let kinds: string[] = [];
    while (Date.now() < deadline && !kinds.includes("tftp.transfer")) {
      kinds = (await (await k.api("/events?mac=52:54:00:ab:00:01")).json())
        .map((e: { kind: string }) => e.kind)
        .reverse();
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(kinds.filter((x) => x !== "machine.discovered")).toEqual(["ipxe.request", "tftp.transfer", "http.asset"]);
  });
});
