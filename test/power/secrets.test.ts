import { copyFileSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { Keyring, keyIdOf } from "../../src/power/keyring.ts";
import { copyDatabase } from "../helpers/database.ts";
import { type Running, startTestKindling, tempDir } from "../helpers/kindling.ts";
import type { RedfishSim } from "./rig/redfish-sim.ts";
import { startRedfishSim } from "./rig/simulator.ts";

const PASSWORD = "Unique-BMC-Secret-4f1c9e";
const MAC = "52:54:00:18:00:01";

let sim: RedfishSim;
let simPort: number;
let cert: string;
const running: Running[] = [];

beforeAll(async () => {
  ({ sim, port: simPort, cert } = await startRedfishSim({ password: PASSWORD }));
});
afterAll(() => sim.close());
afterEach(async () => {
  for (const k of running.splice(0)) await k.stop();
});

async function kindling(dataDir = tempDir(), env: Record<string, unknown> = {}): Promise<Running> {
  const k = await startTestKindling({ power: { pollSeconds: 0, timeoutSeconds: 10, ...env } }, dataDir);
  running.push(k);
  return k;
}

async function withBmc(k: Running): Promise<void> {
  expect((await k.api("/machines", { method: "POST", json: { mac: MAC } })).status).toBe(201);
  const r = await k.api(`/machines/${MAC}/bmc`, {
    method: "PUT",
    json: {
      driver: "redfish",
      address: "127.0.0.1",
      port: simPort,
      username: "admin",
      password: PASSWORD,
      caCert: cert,
    },
  });
  expect(r.status).toBe(200);
}

const status = async (k: Running) =>
  (await k.api(`/machines/${MAC}/power`, { method: "POST", json: { action: "status" } })).json();

/** Every byte of the database files (the WAL holds recent pages until a checkpoint). */
const dbBytes = (dir: string) =>
  Buffer.concat(
    ["kindling.db", "kindling.db-wal"].filter((f) => existsSync(join(dir, f))).map((f) => readFileSync(join(dir, f))),
  );

describe("BMC passwords at rest", () => {
  test("the database holds no plaintext password, in any common encoding; the key file is 0600", async () => {
    const k = await kindling();
    await withBmc(k);
    expect(await status(k)).toMatchObject({ ok: true, state: "off" }); // the stored password opens the BMC
    const bytes = dbBytes(k.dataDir);
    expect(bytes.length).toBeGreaterThan(0);
    for (const form of [
      Buffer.from(PASSWORD, "utf8"),
      Buffer.from(PASSWORD, "utf16le"),
      Buffer.from(Buffer.from(PASSWORD).toString("base64")),
      Buffer.from(Buffer.from(PASSWORD).toString("hex")),
    ])
      expect(bytes.includes(form)).toBe(false);
    const keyFile = join(k.dataDir, "bmc-keys");
    expect(existsSync(keyFile)).toBe(true);
    const { statSync } = await import("node:fs");
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
  });

  test("a copied database without the key reveals nothing: the BMC cannot be used and the answer says why", async () => {
    const k = await kindling();
    await withBmc(k);
    await k.close();
    const copy = tempDir();
    for (const f of ["kindling.db", "kindling.db-wal"])
      if (existsSync(join(k.dataDir, f))) copyFileSync(join(k.dataDir, f), join(copy, f));
    copyDatabase(k.dataDir, copy);
    const stolen = await kindling(copy); // a new key file is generated: not the one the passwords need
    const view = await (await stolen.api(`/machines/${MAC}/bmc`)).json();
    expect(view.password).toBe("set");
    const r = await stolen.api(`/machines/${MAC}/power`, { method: "POST", json: { action: "status" } });
    expect(r.status).toBe(502);
    const body = await r.json();
    expect(body).toMatchObject({ ok: false, errorKind: "key" });
    expect(body.answer).toMatch(/encrypted with key [0-9a-f]{16}, which this Kindling does not have/);
    expect(JSON.stringify(body)).not.toContain(PASSWORD);
    // The session the sim saw was never opened by the copy.
    expect(sim.log.filter((l) => l.auth === "bad")).toHaveLength(0);
  });

  test("rotation through the API: new key appended, passwords re-encrypted, still usable after a restart", async () => {
    const dir = tempDir();
    const k = await kindling(dir);
    await withBmc(k);
    const before = readFileSync(join(dir, "bmc-keys"), "utf8").trim().split("\n");
    const rot = await (await k.api("/bmc-keys/rotate", { method: "POST" })).json();
    expect(rot.rewrapped).toBe(1);
    const after = readFileSync(join(dir, "bmc-keys"), "utf8").trim().split("\n");
    expect(after).toHaveLength(2);
    expect(after[0]).toBe(before[0]); // the old key stays readable
    expect(rot.keyId).toBe(keyIdOf(Buffer.from(after[1]!, "base64")));
    expect(await status(k)).toMatchObject({ ok: true });
    await k.stop({ keepData: true });
    running.splice(running.indexOf(k), 1);
    const again = await kindling(dir);
    expect(await status(again)).toMatchObject({ ok: true });
  });

  test("rotation by environment: the old key in KINDLING_BMC_OLD_KEYS keeps records readable and they move to the new key", async () => {
    const dir = tempDir();
    const oldKey = Buffer.alloc(32, 7).toString("base64");
    const newKey = Buffer.alloc(32, 9).toString("base64");
    const k = await kindling(dir, { key: oldKey });
    await withBmc(k);
    await k.stop({ keepData: true });
    running.splice(running.indexOf(k), 1);
    // The new key alone cannot open the record (on a copy: start-up must not touch the original)...
    const copy = tempDir();
    for (const f of ["kindling.db", "kindling.db-wal"])
      if (existsSync(join(dir, f))) copyFileSync(join(dir, f), join(copy, f));
    copyDatabase(dir, copy);
    const lost = await kindling(copy, { key: newKey });
    expect(await status(lost)).toMatchObject({ ok: false, errorKind: "key" });
    // ...with the old one listed it can, and start-up re-encrypts it under the new key.
    const k2 = await kindling(dir, { key: newKey, oldKeys: oldKey });
    expect(await status(k2)).toMatchObject({ ok: true });
    await k2.stop({ keepData: true });
    running.splice(running.indexOf(k2), 1);
    const k3 = await kindling(dir, { key: newKey });
    expect(await status(k3)).toMatchObject({ ok: true });
    // Rotation through the API is refused while the keys come from the environment.
    expect((await k3.api("/bmc-keys/rotate", { method: "POST" })).status).toBe(409);
  });
});

describe("Keyring", () => {
  const a = Buffer.alloc(32, 1);
  const b = Buffer.alloc(32, 2);

  test("a ciphertext is bound to its machine and names its key", () => {
    const ring = new Keyring([a]);
    const c = ring.encrypt("pw", MAC);
    expect(c.split(":")[1]).toBe(keyIdOf(a));
    expect(ring.decrypt(c, MAC)).toBe("pw");
    expect(() => ring.decrypt(c, "52:54:00:18:00:02")).toThrow(/does not decrypt/);
    expect(ring.encrypt("pw", MAC)).not.toBe(c); // a fresh IV each time
  });

  test("old keys decrypt, the newest encrypts; a missing key is named", () => {
    const old = new Keyring([a]).encrypt("pw", MAC);
    const ring = new Keyring([a, b]);
    expect(ring.decrypt(old, MAC)).toBe("pw");
    expect(ring.encrypt("pw", MAC).split(":")[1]).toBe(keyIdOf(b));
    expect(() => new Keyring([b]).decrypt(old, MAC)).toThrow(new RegExp(`key ${keyIdOf(a)}`));
  });
});

describe("key settings", () => {
  test("a bad key from the environment stops start-up naming the setting, never echoing the value", async () => {
    const { loadConfig } = await import("../../src/config.ts");
    const secret = "not-a-real-key-but-secret";
    let message = "";
    try {
      loadConfig({ env: { KINDLING_BMC_KEY: secret } });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/^invalid config: power\.key: a 32-byte key in base64 .*\(from env KINDLING_BMC_KEY\)$/);
    expect(message).not.toContain(secret);
    const good = Buffer.alloc(32, 3).toString("base64");
    expect(
      loadConfig({ env: { KINDLING_BMC_KEY: good, KINDLING_BMC_OLD_KEYS: `${good},${good}` } }).power,
    ).toMatchObject({
      key: good,
      oldKeys: `${good},${good}`,
    });
  });
});
