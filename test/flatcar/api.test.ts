import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Hono } from "hono";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FlatcarConfigSchema } from "../../src/flatcar/config.ts";
import { Mirror } from "../../src/flatcar/mirror.ts";
import { apiApp } from "../../src/http/api/common.ts";
import { errorResponse } from "../../src/http/errors.ts";
import { registerAssets } from "../../src/http/routes/assets-api.ts";
import { silentLogger } from "../../src/log.ts";
import { buildRelease, CollectingSink, makeKey, Origin } from "./fixture.ts";

const V = "4600.1.0";
let origin: Origin;
let work: string;
let app: Hono;

beforeAll(async () => {
  const key = await makeKey();
  work = await mkdtemp(join(tmpdir(), "kindling-flatcar-api-"));
  await writeFile(join(work, "key.asc"), key.armoredPublic);
  origin = await new Origin().start();
  origin.addRelease("beta", "arm64-usr", V, await buildRelease(key, V));
  origin.setCurrent("beta", "arm64-usr", V);
  const config = FlatcarConfigSchema.parse({
    origin: `${origin.url}/{channel}/{board}`,
    signingKey: join(work, "key.asc"),
    signingFingerprint: key.fingerprint,
  });
  const mirror = new Mirror({ root: join(work, "assets"), config, events: new CollectingSink(), log: silentLogger });
  app = new Hono();
  app.onError((err, c) => errorResponse(err, c, silentLogger));
  const api = apiApp();
  registerAssets(api, mirror);
  app.route("/api/v1", api);
});

afterAll(async () => {
  await origin.close();
  await rm(work, { recursive: true, force: true });
});

const post = (body: unknown) =>
  app.request("/api/v1/assets/sync", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });

describe("assets API", () => {
  it("POST /assets/sync with wait verifies the release and answers where it is served", async () => {
    const res = await post({ channel: "beta", arch: "arm64", wait: true });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      state: "ready",
      channel: "beta",
      board: "arm64-usr",
      version: V,
      basePath: "/assets/flatcar/beta/arm64-usr",
    });
  });

  it("GET /assets lists the verified release as current", async () => {
    const res = await app.request("/api/v1/assets");
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      releases: { channel: string; board: string; version: string; current: boolean }[];
      syncing: unknown[];
    };
    expect(body.releases).toMatchObject([{ channel: "beta", board: "arm64-usr", version: V, current: true }]);
    expect(body.syncing).toEqual([]);
  });

  it("POST /assets/sync without wait answers 202 and the failure shows in GET /assets", async () => {
    const res = await post({ channel: "alpha", version: "9999.0.0" });
    expect(res.status).toBe(202);
    expect(await res.json()).toMatchObject({
      state: "syncing",
      channel: "alpha",
      board: "amd64-usr",
      version: "9999.0.0",
    });
    let failed: { version: string; reason: string }[] = [];
    for (let i = 0; i < 100 && failed.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 20));
      failed = ((await (await app.request("/api/v1/assets")).json()) as { failed: typeof failed }).failed;
    }
    expect(failed).toMatchObject([{ version: "9999.0.0", reason: expect.stringMatching(/not found at origin/) }]);
  });

  it("names the bad field of a malformed request", async () => {
    const res = await post({ channel: "edge" });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ field: "channel" });
  });
});
