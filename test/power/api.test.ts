import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { createServer, type Server, type Socket } from "node:net";
import { Writable } from "node:stream";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { loadConfig } from "../../src/config.ts";
import { startKindling } from "../../src/server.ts";
import { databaseSetting } from "../helpers/database.ts";
import { freePort, type JsonResponse, type Running, TEST_TOKEN } from "../helpers/kindling.ts";
import type { RedfishSim } from "./rig/redfish-sim.ts";
import { scratchDir } from "./rig/scratch.ts";
import { startRedfishSim } from "./rig/simulator.ts";

const PASSWORD = "Masked-Secret-93ad01";
const TIMEOUT_S = 2;

let k: Running;
let logText = "";
let sim: RedfishSim;
let simPort: number;
let cert: string;
let udp: UdpSocket;
let udpPort: number;
let tcp: Server;
let tcpPort: number;
const held: Socket[] = [];

/** Kindling with a logger at trace level into a string: the password must not reach any line. */
async function kindlingWithLog(): Promise<Running> {
  const port = await freePort();
  const dataDir = scratchDir("kindling-power-api-");
  const sink = new Writable({
    write(chunk, _enc, done) {
      logText += chunk.toString();
      done();
    },
  });
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir,
      advertise: "127.0.0.1",
      apiToken: TEST_TOKEN,
      http: { host: "127.0.0.1", port },
      tftp: { port: 0 },
      dhcp: { mode: "off" },
      power: { timeoutSeconds: TIMEOUT_S, pollSeconds: 0 },
      ...databaseSetting(dataDir),
    },
  });
  const kd = await startKindling(config, pino({ level: "trace" }, sink));
  const url = `http://127.0.0.1:${port}`;
  return {
    ...kd,
    url,
    dataDir,
    api: (path, init = {}) => {
      const { json, ...rest } = init;
      return fetch(`${url}/api/v1${path}`, {
        ...rest,
        headers: {
          authorization: `Bearer ${TEST_TOKEN}`,
          ...(json !== undefined ? { "content-type": "application/json" } : {}),
        },
        ...(json !== undefined ? { body: JSON.stringify(json) } : {}),
      }) as Promise<JsonResponse>;
    },
    stop: () => kd.close(),
  };
}

beforeAll(async () => {
  ({ sim, port: simPort, cert } = await startRedfishSim({ password: PASSWORD }));
  // A BMC that never answers: UDP datagrams are swallowed, TCP connections are accepted and left silent.
  udp = createSocket("udp4");
  await new Promise<void>((r) => udp.bind(0, "127.0.0.1", r));
  udpPort = udp.address().port;
  tcp = createServer((s) => held.push(s));
  await new Promise<void>((r) => tcp.listen(0, "127.0.0.1", r));
  tcpPort = (tcp.address() as { port: number }).port;
  k = await kindlingWithLog();
});
afterAll(async () => {
  await k.stop();
  await sim.close();
  udp.close();
  for (const s of held) s.destroy();
  tcp.close();
});

let n = 0;
async function machine(): Promise<string> {
  const mac = `52:54:00:18:02:${(n++).toString(16).padStart(2, "0")}`;
  expect((await k.api("/machines", { method: "POST", json: { mac } })).status).toBe(201);
  return mac;
}
const put = (mac: string, json: unknown) => k.api(`/machines/${mac}/bmc`, { method: "PUT", json });
const redfish = { driver: "redfish", address: "127.0.0.1", username: "admin", password: PASSWORD };

describe("BMC input", () => {
  test.each([
    [{ ...redfish, driver: "smoke-signals", port: 1 }, "driver"],
    [{ driver: "ipmi", address: "127.0.0.1", password: "x" }, "username"],
    [{ driver: "ipmi", address: "127.0.0.1", username: "u" }, "password"],
    [{ driver: "ipmi", username: "u", password: "x" }, "address"],
    [{ ...redfish, address: "-oProxyCommand=x" }, "address"],
    [{ ...redfish, port: 70000 }, "port"],
    [{ ...redfish, caCert: "not pem" }, "caCert"],
    [{ driver: "ipmi", address: "127.0.0.1", username: "u", password: "x", insecure: true }, "insecure"],
    [{ ...redfish, cipherSuite: 3 }, "cipherSuite"],
    [{ ...redfish, extra: 1 }, "(body)"],
  ] as const)("case %# → 400 naming the field", async (body, field) => {
    const mac = await machine();
    const r = await put(mac, body);
    expect(r.status).toBe(400);
    const err = await r.json();
    expect(err.field).toBe(field);
    expect(JSON.stringify(err)).not.toContain(PASSWORD);
  });

  test("unknown action, reinstall without cycle, a machine without BMC", async () => {
    const mac = await machine();
    let r = await k.api(`/machines/${mac}/power`, { method: "POST", json: { action: "explode" } });
    expect([r.status, (await r.json()).field]).toEqual([400, "action"]);
    r = await k.api(`/machines/${mac}/power`, { method: "POST", json: { action: "on", reinstall: true } });
    expect([r.status, (await r.json()).field]).toEqual([400, "reinstall"]);
    r = await k.api(`/machines/${mac}/power`, { method: "POST", json: { action: "status" } });
    expect(r.status).toBe(404);
    expect((await r.json()).error).toMatch(/has no BMC/);
    expect((await k.api("/machines/52:54:00:99:99:99/bmc", { method: "PUT", json: { ...redfish } })).status).toBe(404);
  });
});

describe("masking", () => {
  test("the password never comes back: API answers, events, log lines", async () => {
    const mac = await machine();
    const set = await put(mac, { ...redfish, port: simPort, caCert: cert });
    expect(set.status).toBe(200);
    const view = await set.json();
    expect(view.password).toBe("set");
    expect(
      await (await k.api(`/machines/${mac}/power`, { method: "POST", json: { action: "on" } })).json(),
    ).toMatchObject({ ok: true });
    // A wrong password: the BMC's refusal is recorded, the password is not.
    await put(mac, { ...redfish, port: simPort, caCert: cert, password: `${PASSWORD}-wrong` });
    const bad = await (await k.api(`/machines/${mac}/power`, { method: "POST", json: { action: "status" } })).json();
    expect(bad).toMatchObject({ ok: false, errorKind: "auth" });
    const everything = [
      JSON.stringify(await (await k.api(`/machines/${mac}/bmc`)).json()),
      JSON.stringify(await (await k.api(`/machines/${mac}`)).json()),
      JSON.stringify(await (await k.api(`/events?mac=${mac}`)).json()),
      JSON.stringify(bad),
      logText,
    ].join("\n");
    expect(everything).toContain("power.on");
    expect(logText).toContain("BMC action failed");
    expect(everything).not.toContain(PASSWORD);
  });
});

describe("a BMC that never answers", () => {
  const expectBounded = async (mac: string, driverPattern: RegExp) => {
    const started = Date.now();
    const pending = k.api(`/machines/${mac}/power`, { method: "POST", json: { action: "status" } });
    // Boot serving goes on meanwhile.
    const boot = await fetch(`${k.url}/boot.ipxe`);
    expect(boot.status).toBe(200);
    expect(Date.now() - started).toBeLessThan(TIMEOUT_S * 1000);
    const r = await pending;
    expect(r.status).toBe(504);
    const body = await r.json();
    expect(body).toMatchObject({ ok: false, errorKind: "timeout" });
    expect(body.answer).toMatch(driverPattern);
    expect(body.answer).toMatch(new RegExp(`within ${TIMEOUT_S} s`));
    const last = (await (await k.api(`/events?mac=${mac}&limit=1`)).json())[0];
    expect(last).toMatchObject({ kind: "power.status", detail: { ok: false, errorKind: "timeout" } });
  };

  test("IPMI to a UDP port that swallows: a timeout error within the bound", async () => {
    const mac = await machine();
    expect(
      (await put(mac, { driver: "ipmi", address: "127.0.0.1", port: udpPort, username: "u", password: PASSWORD }))
        .status,
    ).toBe(200);
    await expectBounded(mac, /IPMI BMC 127\.0\.0\.1:\d+|ipmi BMC/);
  });

  test("Redfish to a TCP port that accepts and stays silent: a timeout error within the bound", async () => {
    const mac = await machine();
    expect((await put(mac, { ...redfish, port: tcpPort, insecure: true })).status).toBe(200);
    await expectBounded(mac, /redfish BMC|Redfish BMC/i);
  });

  test("calls to one BMC wait in its line; past the line's length they are refused at once", async () => {
    const mac = await machine();
    await put(mac, { ...redfish, port: tcpPort, insecure: true });
    const calls = Array.from({ length: 6 }, () =>
      k.api(`/machines/${mac}/power`, { method: "POST", json: { action: "status" } }),
    );
    const statuses = (await Promise.all(calls)).map((r) => r.status).sort();
    // power.queuePerBmc (4) wait and time out one after another; the rest are told the BMC is busy.
    expect(statuses).toEqual([409, 409, 504, 504, 504, 504]);
  }, 30_000);
});
