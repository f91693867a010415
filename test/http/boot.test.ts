import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Origin } from "../flatcar/fixture.ts";
import { TEST_ENGINE } from "../helpers/database.ts";
import type { Running } from "../helpers/kindling.ts";
import { ipxeUntil as ipxeUntilOn, startWithRelease } from "../helpers/release.ts";

let k: Running;
let origin: Origin;
let stop: () => Promise<void>;
beforeAll(async () => {
  ({ k, origin, stop } = await startWithRelease());
});
afterAll(() => stop());
const ipxeUntil = (query: string, text: string) => ipxeUntilOn(k, query, text);

const ipxe = (query: string) => fetch(`${k.url}/ipxe?${query}`);

describe("boot routes", () => {
  it("/boot.ipxe is a text/plain iPXE script chaining to /ipxe", async () => {
    const r = await fetch(`${k.url}/boot.ipxe`);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toMatch(/^text\/plain/);
    expect(await r.text()).toContain(`chain --autofree ${k.url}/ipxe?mac=\${mac:hexhyp}`);
  });

  it("an unknown MAC is recorded as discovered with what it told, and waits", async () => {
    const r = await ipxe(
      "mac=52-54-00-00-01-01&uuid=4C4C4544-0042-3010-8052-B4C04F4E4D32&serial=SN%201&hostname=&arch=x86_64&platform=efi",
    );
    expect(r.status).toBe(200);
    const body = await r.text();
    expect(body).toMatch(/^#!ipxe\n/);
    expect(body).toContain("sleep 30");
    const m = await (await k.api("/machines/52:54:00:00:01:01")).json();
    expect(m).toMatchObject({
      state: "discovered",
      uuid: "4c4c4544-0042-3010-8052-b4c04f4e4d32",
      serial: "SN 1",
      arch: "amd64",
      profile: null,
    });
    expect(m.history.map((e: { kind: string }) => e.kind)).toEqual(["ipxe.request", "machine.discovered"]);
  });

  it("a registered Flatcar machine gets the channel's kernel and initrd with matching initrd= and a signed Ignition URL", async () => {
    expect(
      (
        await k.api("/machines", {
          method: "POST",
          json: { mac: "52:54:00:00:01:02", profile: "flatcar-install", hostname: "node2" },
        })
      ).status,
    ).toBe(201);
    // Registration started the sync; the machine's script names the kernel once it is verified.
    const body = await ipxeUntil("mac=52-54-00-00-01-02&arch=x86_64&platform=pcbios", "kernel ");
    const base = `${k.url}/assets/flatcar/stable/amd64-usr/4593.2.5`;
    const kernel = body.split("\n").find((l) => l.startsWith("kernel "))!;
    expect(
      kernel.startsWith(
        `kernel ${base}/flatcar_production_pxe.vmlinuz initrd=flatcar_production_pxe_image.cpio.gz flatcar.first_boot=1 ignition.config.url=${k.url}/ignition?mac=52%3A54%3A00%3A00%3A01%3A02&exp=`,
      ),
    ).toBe(true);
    expect(kernel).toContain("console=ttyS0,115200n8");
    expect(body).toContain(
      `initrd --name flatcar_production_pxe_image.cpio.gz ${base}/flatcar_production_pxe_image.cpio.gz\nboot\n`,
    );
    // The kernel and initrd named in the script are really served, byte for byte what the origin signed.
    const kernelBytes = Buffer.from(await (await fetch(`${base}/flatcar_production_pxe.vmlinuz`)).arrayBuffer());
    expect(
      kernelBytes.equals(
        Buffer.from(origin.tree.get("/stable/amd64-usr/4593.2.5/flatcar_production_pxe.vmlinuz") as Uint8Array),
      ),
    ).toBe(true);
  });

  it("a release that cannot be mirrored answers a wait script with the reason, never a kernel", async () => {
    await k.api("/profiles/beta-live", { method: "PUT", json: { flatcar: { channel: "beta" } } });
    await k.api("/machines", { method: "POST", json: { mac: "52:54:00:00:01:03", profile: "beta-live" } });
    const body = await ipxeUntil("mac=52:54:00:00:01:03", "cannot mirror");
    expect(body).not.toContain("kernel ");
    expect(body).toContain("Flatcar beta current");
    expect(body).toContain("chain --replace --autofree");
  });

  it("a raw-boot profile renders per-machine values into kernel args and resolves relative URLs", async () => {
    const put = await k.api("/profiles/debian", {
      method: "PUT",
      json: {
        boot: {
          kernel: "/assets/debian/vmlinuz",
          initrd: ["/assets/debian/initrd.gz", "http://other/extra.img"],
          args: ["hostname={{ hostname }}", "rack={{ metadata.rack }}"],
        },
      },
    });
    expect(put.status).toBe(201);
    await k.api("/machines", {
      method: "POST",
      json: { mac: "52:54:00:00:01:04", profile: "debian", hostname: "db1", metadata: { rack: "r7" } },
    });
    const body = await (await ipxe("mac=52:54:00:00:01:04")).text();
    expect(body).toContain(
      `kernel ${k.url}/assets/debian/vmlinuz initrd=initrd.gz initrd=extra.img hostname=db1 rack=r7\n`,
    );
    expect(body).toContain(
      `initrd --name initrd.gz ${k.url}/assets/debian/initrd.gz\ninitrd --name extra.img http://other/extra.img\n`,
    );
  });

  it("a missing template value is a 500 with the reason and an event, not a script with a hole", async () => {
    await k.api("/machines", {
      method: "POST",
      json: { mac: "52:54:00:00:01:05", profile: "debian", hostname: "db2" },
    });
    const r = await ipxe("mac=52:54:00:00:01:05");
    expect(r.status).toBe(500);
    expect(await r.text()).toContain("metadata.rack");
    const events = await (await k.api("/events?mac=52:54:00:00:01:05&kind=render.failed")).json();
    expect(events).toHaveLength(1);
  });

  it("groups decide for machines without a profile: list selectors, most specific wins, ties by name", async () => {
    await k.api("/groups", {
      method: "POST",
      json: { name: "rack-b", selector: { rack: ["b1", "b2"] }, profile: "local-disk" },
    });
    await k.api("/groups", {
      method: "POST",
      json: {
        name: "rack-b-arm",
        selector: { rack: ["b1", "b2"], arch: "arm64" },
        profile: "debian",
        metadata: { rack: "from-group" },
      },
    });
    await k.api("/groups", { method: "POST", json: { name: "b-tie", selector: { tie: "x" }, profile: "local-disk" } });
    await k.api("/groups", { method: "POST", json: { name: "a-tie", selector: { tie: "x" }, profile: "debian" } });
    expect(await (await ipxe("mac=52:54:00:00:02:01&rack=b2&arch=x86_64")).text()).toContain("booting from local disk");
    const arm = await (await ipxe("mac=52:54:00:00:02:02&rack=b1&arch=arm64")).text();
    expect(arm).toContain("profile debian");
    expect(arm).toContain("rack=from-group"); // group metadata fills templates
    // a-tie and b-tie both have one selector: a-tie sorts first → debian (whose rack metadata is missing → 500).
    const tie = await ipxe("mac=52:54:00:00:02:03&tie=x");
    expect(tie.status).toBe(500);
    expect(await tie.text()).toContain("metadata.rack");
  });

  it("a machine whose profile was deleted out from under it gets an honest 404", async () => {
    await k.api("/profiles/temp", { method: "PUT", json: { localDisk: true } });
    await k.api("/machines", { method: "POST", json: { mac: "52:54:00:00:01:06", profile: "temp" } });
    k.store.db.prepare("DELETE FROM profiles WHERE name = 'temp'").run();
    const r = await ipxe("mac=52:54:00:00:01:06");
    expect(r.status).toBe(404);
    expect(await r.text()).toContain("profile temp not found");
  });

  it("a hostname a machine reports is kept only when well-formed (it may reach kernel args)", async () => {
    await ipxe("mac=52:54:00:00:03:01&hostname=x%20ignition.config.url%3Dhttp%3A%2F%2Fevil");
    expect((await (await k.api("/machines/52:54:00:00:03:01")).json()).hostname).toBeNull();
    await ipxe("mac=52:54:00:00:03:02&hostname=node-7.example");
    expect((await (await k.api("/machines/52:54:00:00:03:02")).json()).hostname).toBe("node-7.example");
  });

  it("a bad MAC is a 400", async () => {
    const r = await ipxe("mac=nonsense");
    expect(r.status).toBe(400);
    expect((await k.api("/machines?search=nonsense").then((x) => x.json())) as unknown[]).toHaveLength(0);
  });

  it("/metadata shows identity publicly and metadata only on a signed URL", async () => {
    const pub = (await (await fetch(`${k.url}/metadata?mac=52:54:00:00:01:04`)).json()) as Record<string, unknown>;
    expect(pub).toMatchObject({ mac: "52:54:00:00:01:04", hostname: "db1" });
    expect(pub.metadata).toBeUndefined();
    const forged = (await (
      await fetch(`${k.url}/metadata?mac=52:54:00:00:01:04&exp=9999999999&sig=abc`)
    ).json()) as Record<string, unknown>;
    expect(forged.metadata).toBeUndefined();
  });

  it("/healthz answers", async () => {
    expect(await (await fetch(`${k.url}/healthz`)).json()).toMatchObject({
      status: "ok",
      database: { engine: TEST_ENGINE, reachable: true },
    });
  });
});
