import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Running, startTestKindling, TEST_TOKEN } from "../helpers/kindling.ts";

const run = promisify(execFile);
const BIN = join(import.meta.dirname, "..", "..", "bin", "kindling.js");
const N = 250;
const macOf = (i: number) =>
  `52:54:00:10:${(i >> 8).toString(16).padStart(2, "0")}:${(i & 255).toString(16).padStart(2, "0")}`;
const ALL = Array.from({ length: N }, (_, i) => macOf(i));

let k: Running;
beforeAll(async () => {
  k = await startTestKindling({ boot: { discoveriesPerMinute: 10_000 } });
  // Discovered the way real machines are: by booting (in shuffled order, so MAC order is not arrival order).
  const order = [...ALL].sort((a, b) => (a.slice(-1) + a).localeCompare(b.slice(-1) + b));
  for (const mac of order) expect((await fetch(`${k.url}/ipxe?mac=${mac}`)).status).toBe(200);
});
afterAll(() => k?.stop());

describe("GET /api/v1/machines pages", () => {
  it("answers 100 by default with a cursor; following cursors yields every machine once, in MAC order", async () => {
    const first = await k.api("/machines");
    expect(await first.json()).toHaveLength(100);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const r = await k.api(`/machines?state=discovered&limit=70${cursor ? `&cursor=${cursor}` : ""}`);
      expect(r.status).toBe(200);
      seen.push(...(await r.json()).map((m: { mac: string }) => m.mac));
      cursor = r.headers.get("x-next-cursor");
      pages++;
    } while (cursor && pages < 10);
    expect(pages).toBe(4);
    expect(seen).toEqual(ALL);
  });

  it("refuses a limit above 1000 and a cursor it did not give out, naming the field", async () => {
    const big = await k.api("/machines?limit=1001");
    expect(big.status).toBe(400);
    expect((await big.json()).field).toBe("query.limit");
    const bad = await k.api("/machines?cursor=not-ours");
    expect(bad.status).toBe(400);
    expect((await bad.json()).field).toBe("cursor");
  });

  it("documents limit, cursor and X-Next-Cursor, and the body errors, in the OpenAPI document", async () => {
    // biome-ignore lint/suspicious/noExplicitAny: the OpenAPI document is read loosely
    const doc: any = await (await fetch(`${k.url}/api/v1/openapi.json`)).json();
    const list = doc.paths["/machines"].get;
    expect(list.parameters.map((p: { name: string }) => p.name)).toEqual(expect.arrayContaining(["limit", "cursor"]));
    expect(list.responses["200"].headers["X-Next-Cursor"]).toBeDefined();
    expect(Object.keys(doc.paths["/machines"].post.responses)).toEqual(expect.arrayContaining(["413", "415"]));
  });
});

describe("kindling machines list", () => {
  const cli = async (args: string[]) => {
    const r = await run(process.execPath, [BIN, "--server", k.url, "--token", TEST_TOKEN, "--json", ...args], {
      timeout: 30_000,
    });
    return { out: JSON.parse(r.stdout) as { mac: string }[], err: r.stderr };
  };

  it("follows every page by default", async () => {
    expect((await cli(["machines", "list"])).out.map((m) => m.mac)).toEqual(ALL);
  });

  it("shows one page with --limit and says how to go on; --cursor continues", async () => {
    const one = await cli(["machines", "list", "--limit", "100"]);
    expect(one.out.map((m) => m.mac)).toEqual(ALL.slice(0, 100));
    const cursor = /more: --cursor (\S+)/.exec(one.err)?.[1];
    expect(cursor).toBeTruthy();
    const two = await cli(["machines", "list", "--limit", "100", "--cursor", cursor!]);
    expect(two.out.map((m) => m.mac)).toEqual(ALL.slice(100, 200));
  });
});

describe("console pages", () => {
  let cookie: string;
  beforeAll(async () => {
    const res = await fetch(`${k.url}/ui/login`, {
      method: "POST",
      redirect: "manual",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: TEST_TOKEN }).toString(),
    });
    cookie = res.headers.get("set-cookie")!.split(";")[0]!;
  });
  const page = async (path: string) => {
    const html = await (await fetch(`${k.url}${path}`, { headers: { cookie } })).text();
    const rows = [...html.matchAll(/<tr data-mac="([^"]+)"/g)].map((m) => m[1]!);
    const link = (label: string) =>
      new RegExp(`<a href="([^"]+)">${label}`).exec(html)?.[1]?.replaceAll("&amp;", "&") ?? undefined;
    return { rows, next: link("Next"), prev: link("← Previous") };
  };

  it("machines: 100 rows a page, Next and Previous walk the list, filters kept", async () => {
    const walked: string[] = [];
    let p = await page("/ui/machines?state=discovered");
    expect(p.prev).toBeUndefined();
    const visited = [p];
    walked.push(...p.rows);
    while (p.next && visited.length < 5) {
      expect(p.next).toContain("state=discovered");
      p = await page(p.next);
      visited.push(p);
      walked.push(...p.rows);
    }
    expect(visited.map((v) => v.rows.length)).toEqual([100, 100, 50]);
    expect(walked).toEqual(ALL);
    const back = await page(p.prev!);
    expect(back.rows).toEqual(ALL.slice(100, 200));
    // The polled fragment shows the same page.
    const cursor = new URL(p.prev!, k.url).searchParams.get("cursor")!;
    const fragment = await (
      await fetch(`${k.url}/ui/machines/rows?state=discovered&cursor=${cursor}`, { headers: { cookie } })
    ).text();
    expect([...fragment.matchAll(/<tr data-mac="([^"]+)"/g)].map((m) => m[1])).toEqual(ALL.slice(100, 200));
  });

  it("discovered: newest first, 100 a page, every machine once", async () => {
    const walked: string[] = [];
    let p = await page("/ui/discovered");
    walked.push(...p.rows);
    let pages = 1;
    while (p.next && pages < 5) {
      p = await page(p.next);
      walked.push(...p.rows);
      pages++;
    }
    expect(pages).toBe(3);
    expect(walked).toHaveLength(N);
    expect(new Set(walked)).toEqual(new Set(ALL));
  });

  it("a cursor that is not ours, or one past the end, shows the first page", async () => {
    expect((await page("/ui/machines?cursor=garbage")).rows).toEqual(ALL.slice(0, 100));
    const pastEnd = Buffer.from(JSON.stringify({ a: "ff:ff:ff:ff:ff:ff" })).toString("base64url");
    expect((await page(`/ui/machines?cursor=${pastEnd}`)).rows).toEqual(ALL.slice(0, 100));
  });
});

describe("events pages", () => {
  it("before=<last id> gives the next page back, and kindling events --before does the same", async () => {
    const first = await (await k.api("/events?limit=40")).json();
    expect(first).toHaveLength(40);
    const last = first.at(-1).id as number;
    const next = await (await k.api(`/events?limit=40&before=${last}`)).json();
    expect(next[0].id).toBeLessThan(last);
    expect(next.map((e: { id: number }) => e.id)).toEqual(
      (await (await k.api("/events?limit=80")).json()).slice(40).map((e: { id: number }) => e.id),
    );
    const r = await run(process.execPath, [
      BIN,
      "--server",
      k.url,
      "--token",
      TEST_TOKEN,
      "--json",
      "events",
      "--limit",
      "40",
      "--before",
      String(last),
    ]);
    expect(JSON.parse(r.stdout).map((e: { id: number }) => e.id)).toEqual(next.map((e: { id: number }) => e.id));
  });
});
