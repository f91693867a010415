/**
 * `/ipxe` through the front listener (http/fast/): a request asked again is answered from the cache of
 * rendered scripts, recorded like any other, and never answered stale. Each invalidation test asks twice
 * first (the second answer comes from the cache), then changes what the answer depends on, then asks again.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Signer } from "../../src/boot/sign.ts";
import { type Running, startTestKindling } from "../helpers/kindling.ts";
import { ipxeUntil, startWithRelease, VERSION } from "../helpers/release.ts";

let k: Running;
beforeAll(async () => {
  k = await startTestKindling();
  const put = await k.api("/profiles/raw", {
    method: "PUT",
    json: {
      boot: { kernel: "/assets/vmlinuz", initrd: ["/assets/initrd.img"], args: ["host={{ hostname }}"] },
      ignition: { json: '{"ignition":{"version":"3.4.0"}}' },
    },
  });
  expect(put.status).toBe(201);
});
afterAll(() => k.stop());

const ipxe = async (query: string) => {
  const r = await fetch(`${k.url}/ipxe?${query}`);
  return { status: r.status, body: await r.text(), headers: r.headers };
};
/** Asks twice (the second from the cache when cacheable) and returns the second answer's body. */
const warm = async (query: string) => {
  const first = await ipxe(query);
  const second = await ipxe(query);
  expect(second.body).toBe(first.body);
  return second.body;
};
const register = async (mac: string, json: Record<string, unknown>) =>
  expect((await k.api("/machines", { method: "POST", json: { mac, ...json } })).status).toBe(201);

describe("/ipxe answered again", () => {
  it("is the same answer, and moves the machine's last_seen", async () => {
    const mac = "52:54:00:ca:00:01";
    await register(mac, { profile: "raw", hostname: "c1" });
    const query = `mac=${mac}&arch=x86_64`;
    // The first sighting is written at once (nothing cached); the second is rendered and cached.
    const first = await ipxe(query);
    expect(first.body).toContain("host=c1");
    expect(await warm(query)).toBe(first.body);
    const seen = async () => (await (await k.api(`/machines/${mac}`)).json()).lastSeen as string;
    const before = await seen();
    await new Promise((r) => setTimeout(r, 5));
    for (let i = 0; i < 20; i++) expect((await ipxe(query)).body).toBe(first.body);
    expect((await seen()) > before).toBe(true);
  });

  it("follows a change of the machine's profile", async () => {
    const mac = "52:54:00:ca:00:02";
    await register(mac, { profile: "raw", hostname: "c2" });
    expect(await warm(`mac=${mac}`)).toContain("kernel ");
    await k.api(`/machines/${mac}`, { method: "PATCH", json: { profile: "local-disk" } });
    expect((await ipxe(`mac=${mac}`)).body).toContain("booting from local disk");
  });

  it("follows a change of the profile's content", async () => {
    const mac = "52:54:00:ca:00:03";
    await k.api("/profiles/raw2", {
      method: "PUT",
      json: { boot: { kernel: "/assets/vmlinuz", args: ["v=1"] } },
    });
    await register(mac, { profile: "raw2" });
    expect(await warm(`mac=${mac}`)).toContain(" v=1");
    await k.api("/profiles/raw2", { method: "PUT", json: { boot: { kernel: "/assets/vmlinuz", args: ["v=2"] } } });
    const after = (await ipxe(`mac=${mac}`)).body;
    expect(after).toContain(" v=2");
    expect(after).not.toContain(" v=1");
  });

  it("follows the machine's metadata and its groups, and keeps queries apart", async () => {
    const mac = "52:54:00:ca:00:04";
    await k.api("/profiles/meta", {
      method: "PUT",
      json: { boot: { kernel: "/assets/vmlinuz", args: ["rack={{ metadata.rack }}"] } },
    });
    await k.api("/groups", {
      method: "POST",
      json: { name: "row-a", selector: { row: "a" }, profile: "meta", metadata: { rack: "g1" } },
    });
    // A query label picks the group: the same machine asking with another label gets another answer.
    expect(await warm(`mac=${mac}&row=a`)).toContain("rack=g1");
    expect(await warm(`mac=${mac}&row=b`)).toContain("has no profile yet");
    await k.api("/groups/row-a", {
      method: "PUT",
      json: { selector: { row: "a" }, profile: "meta", metadata: { rack: "g2" } },
    });
    expect((await ipxe(`mac=${mac}&row=a`)).body).toContain("rack=g2");
    expect(await warm(`mac=${mac}&row=a`)).toContain("rack=g2");
    await k.api(`/machines/${mac}`, { method: "PATCH", json: { metadata: { rack: "own" } } });
    expect((await ipxe(`mac=${mac}&row=a`)).body).toContain("rack=own");
    await k.api("/groups/row-a", { method: "DELETE" });
    expect((await ipxe(`mac=${mac}&row=a`)).body).toContain("has no profile yet");
  });

  it("follows the machine's state: installed boots from disk, reinstall boots the kernel again", async () => {
    const mac = "52:54:00:ca:00:05";
    await register(mac, { profile: "raw", hostname: "c5" });
    expect(await warm(`mac=${mac}`)).toContain("kernel ");
    const signer = Signer.fromFile(join(k.dataDir, "signing-key"));
    const report = (kind: string) =>
      fetch(`${k.url}/report?${signer.query("report", mac, 3600)}&kind=${kind}`, { method: "POST", body: "x" });
    expect((await report("install-started")).status).toBe(200);
    expect(await warm(`mac=${mac}`)).toContain("kernel ");
    expect((await report("install-done")).status).toBe(200);
    expect(await warm(`mac=${mac}`)).toContain("booting from local disk");
    expect((await k.api(`/machines/${mac}/reinstall`, { method: "POST" })).status).toBe(200);
    expect((await ipxe(`mac=${mac}`)).body).toContain("kernel ");
  });

  it("a forgotten machine is discovered again on its next request", async () => {
    const mac = "52:54:00:ca:00:06";
    await register(mac, { profile: "raw", hostname: "c6" });
    await warm(`mac=${mac}`);
    expect((await k.api(`/machines/${mac}/forget`, { method: "POST" })).status).toBe(204);
    expect((await ipxe(`mac=${mac}`)).body).toContain("has no profile yet");
    const m = await (await k.api(`/machines/${mac}`)).json();
    expect(m.state).toBe("discovered");
    expect(m.history.map((e: { kind: string }) => e.kind)).toContain("machine.discovered");
  });

  it("renders again after a second: the signed URLs' expiry is never more than a second old", async () => {
    const mac = "52:54:00:ca:00:07";
    await register(mac, { profile: "raw", hostname: "c7" });
    const exp = (body: string) => Number(/&exp=(\d+)&/.exec(body)![1]);
    const first = exp(await warm(`mac=${mac}`));
    await new Promise((r) => setTimeout(r, 2100));
    expect(exp((await ipxe(`mac=${mac}`)).body)).toBeGreaterThan(first);
  });

  it("a direct write to the database counts too", async () => {
    const mac = "52:54:00:ca:00:08";
    await register(mac, { profile: "raw", hostname: "c8" });
    expect(await warm(`mac=${mac}`)).toContain("host=c8");
    k.store.db.prepare("UPDATE machines SET hostname = 'renamed' WHERE mac = ?").run(mac);
    expect((await ipxe(`mac=${mac}`)).body).toContain("host=renamed");
  });
});

describe("/ipxe of a Flatcar machine answered again", () => {
  it("asks the mirror each time: a release gone from the mirror is not booted from a cached script", async () => {
    const { k: f, stop } = await startWithRelease();
    try {
      const mac = "52:54:00:ca:04:01";
      await f.api("/profiles/fc", { method: "PUT", json: { flatcar: { channel: "stable" } } });
      await f.api("/machines", { method: "POST", json: { mac, profile: "fc" } });
      await ipxeUntil(f, `mac=${mac}`, "kernel ");
      const cached = await (await fetch(`${f.url}/ipxe?mac=${mac}`)).text();
      expect(cached).toContain(`/assets/flatcar/stable/amd64-usr/${VERSION}/`);
      rmSync(join(f.dataDir, "assets", "flatcar", "stable", "amd64-usr", VERSION), { recursive: true, force: true });
      const after = await (await fetch(`${f.url}/ipxe?mac=${mac}`)).text();
      expect(after).not.toContain("kernel ");
      expect(after).toContain("waiting for Flatcar stable");
    } finally {
      await stop();
    }
  });
});

describe("the front listener", () => {
  it("answers with hono's headers: text/plain, a request id (the client's when sane), a length", async () => {
    const mac = "52:54:00:ca:01:01";
    await register(mac, { profile: "raw" });
    const get = await fetch(`${k.url}/ipxe?mac=${mac}`, { headers: { "x-request-id": "trace-1" } });
    expect(get.headers.get("content-type")).toBe("text/plain; charset=utf-8");
    expect(get.headers.get("x-request-id")).toBe("trace-1");
    expect(Number(get.headers.get("content-length"))).toBe(Buffer.byteLength(await get.text()));
    const odd = await fetch(`${k.url}/boot.ipxe`, { headers: { "x-request-id": "no spaces allowed" } });
    expect(odd.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    // HEAD is hono's (same route in routes/boot.ts): the same headers.
    const head = await fetch(`${k.url}/ipxe?mac=${mac}`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-type")).toBe(get.headers.get("content-type"));
  });

  it("leaves other paths and methods to hono", async () => {
    expect((await fetch(`${k.url}/ipxe/`)).status).toBe(404);
    expect((await fetch(`${k.url}/ipxex?mac=52:54:00:ca:01:01`)).status).toBe(404);
    expect((await fetch(`${k.url}/ipxe?mac=52:54:00:ca:01:01`, { method: "POST" })).status).toBe(404);
    expect((await fetch(`${k.url}/healthz`)).status).toBe(200);
  });

  it("counts its answers in the metrics under their routes", async () => {
    const count = async (route: string) => {
      const text = await (await fetch(`${k.url}/metrics`)).text();
      const line = text
        .split("\n")
        .find((l) => l.startsWith(`kindling_http_requests_total{method="GET",route="${route}",status="200"}`));
      return line ? Number(line.split(" ").at(-1)) : 0;
    };
    const before = await count("/boot.ipxe");
    const ipxeBefore = await count("/ipxe");
    await fetch(`${k.url}/boot.ipxe`);
    await fetch(`${k.url}/ipxe?mac=52:54:00:ca:01:01`);
    expect(await count("/boot.ipxe")).toBe(before + 1);
    expect(await count("/ipxe")).toBe(ipxeBefore + 1);
  });
});

describe("every answer is in the history", () => {
  it("a machine asking 200 times, the cache answering most, has 200 requests recorded", async () => {
    const k2 = await startTestKindling();
    const mac = "52:54:00:ca:02:01";
    try {
      await k2.api("/profiles/raw", { method: "PUT", json: { boot: { kernel: "/assets/vmlinuz" } } });
      expect((await k2.api("/machines", { method: "POST", json: { mac, profile: "raw" } })).status).toBe(201);
      const answers = await Promise.all(
        Array.from({ length: 200 }, () => fetch(`${k2.url}/ipxe?mac=${mac}`).then((r) => r.status)),
      );
      expect(answers).toEqual(Array(200).fill(200));
    } finally {
      await k2.stop({ keepData: true });
    }
    const db = new Database(join(k2.dataDir, "kindling.db"), { readonly: true });
    const { requests } = db
      .prepare(
        "SELECT sum(coalesce(json_extract(detail, '$.repeated'), 1)) requests FROM events WHERE mac = ? AND kind = 'ipxe.request'",
      )
      .get(mac) as { requests: number };
    db.close();
    expect(requests).toBe(200);
  });

  it("a request whose history cannot be committed is a 500 in the API's JSON shape, never a script", async () => {
    const k3 = await startTestKindling();
    try {
      await k3.api("/profiles/raw", { method: "PUT", json: { boot: { kernel: "/assets/vmlinuz" } } });
      await k3.api("/machines", { method: "POST", json: { mac: "52:54:00:ca:03:01", profile: "raw" } });
      expect((await fetch(`${k3.url}/ipxe?mac=52:54:00:ca:03:01`)).status).toBe(200);
      k3.store.db.close();
      const r = await fetch(`${k3.url}/ipxe?mac=52:54:00:ca:03:01`);
      expect(r.status).toBe(500);
      expect(r.headers.get("content-type")).toBe("application/json");
      expect(await r.json()).toEqual({ error: "internal error" });
    } finally {
      await k3.stop();
    }
  });
});
