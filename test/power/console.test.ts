import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { MASK } from "../../src/http/ui/mask.ts";
import { type Running, startTestKindling, TEST_TOKEN } from "../helpers/kindling.ts";
import { RedfishSim, VirtualChassis } from "./rig/redfish-sim.ts";
import { scratchDir } from "./rig/scratch.ts";
import { selfSigned } from "./rig/tls.ts";

const PASSWORD = "Console-Secret-77c2";
const A = "52:54:00:18:06:01";
const B = "52:54:00:18:06:02";

let k: Running;
let sim: RedfishSim;
let chassis: VirtualChassis;
let port: number;
let cert: string;
let session: { cookie: string; csrf: string };

const form = (cookie: string, fields: Record<string, string | string[]>) => {
  const body = new URLSearchParams();
  for (const [key, v] of Object.entries(fields)) for (const one of ([] as string[]).concat(v)) body.append(key, one);
  return {
    method: "POST",
    redirect: "manual" as const,
    headers: { "content-type": "application/x-www-form-urlencoded", cookie },
    body: body.toString(),
  };
};
const page = async (path: string) => (await fetch(`${k.url}${path}`, { headers: { cookie: session.cookie } })).text();
/** Posts a console form and reads the page it redirects to (where the flash message shows once). */
async function post(path: string, fields: Record<string, string | string[]>): Promise<string> {
  const res = await fetch(`${k.url}${path}`, form(session.cookie, { _csrf: session.csrf, ...fields }));
  expect(res.status).toBe(303);
  return page(res.headers.get("location")!);
}

beforeAll(async () => {
  const tls = selfSigned(scratchDir("kindling-console-tls-"));
  cert = tls.cert;
  chassis = new VirtualChassis();
  sim = new RedfishSim({ username: "admin", password: PASSWORD, cert: tls.cert, key: tls.key, chassis });
  port = await sim.listen();
  k = await startTestKindling({ power: { pollSeconds: 0 } });
  const res = await fetch(`${k.url}/ui/login`, form("", { token: TEST_TOKEN }));
  const cookie = res.headers.get("set-cookie")!.split(";")[0]!;
  const csrf = /name="_csrf" value="([^"]+)"/.exec(
    await (await fetch(`${k.url}/ui/machines`, { headers: { cookie } })).text(),
  )![1]!;
  session = { cookie, csrf };
  for (const mac of [A, B]) await k.api("/machines", { method: "POST", json: { mac } });
});
afterAll(async () => {
  await k?.stop();
  await sim?.close();
});

describe("console power", () => {
  test("set a BMC from the machine page: the password is masked everywhere after", async () => {
    const bad = await post(`/ui/machines/${A}/bmc`, { driver: "redfish", address: "127.0.0.1", username: "admin" });
    expect(bad).toMatch(/BMC not saved: password/);
    const saved = await post(`/ui/machines/${A}/bmc`, {
      driver: "redfish",
      address: "127.0.0.1",
      port: String(port),
      username: "admin",
      password: PASSWORD,
      caCert: cert,
    });
    expect(saved).toContain("BMC saved");
    const fragment = await page(`/ui/machines/${A}/power`);
    expect(fragment).toContain(MASK);
    expect(fragment).toContain(`redfish admin@127.0.0.1:${port}`);
    for (const html of [saved, fragment, await page(`/ui/machines/${A}`), await page("/ui/power")])
      expect(html).not.toContain(PASSWORD);
  });

  test("single actions show the BMC's answer and the state", async () => {
    chassis.state = "Off";
    expect(await post(`/ui/machines/${A}/power`, { action: "on" })).toContain(`${A} on: Reset On: HTTP 204`);
    await post(`/ui/machines/${A}/power`, { action: "status" });
    expect(await page(`/ui/machines/${A}/power`)).toMatch(/class="power power-on">on</);
    const noBmc = await post(`/ui/machines/${B}/power`, { action: "on" });
    expect(noBmc).toContain(`machine ${B} has no BMC`);
  });

  test("bulk: one action for the ticked machines, a summary naming failures", async () => {
    await k.api(`/machines/${B}/bmc`, {
      method: "PUT",
      json: { driver: "redfish", address: "127.0.0.1", port, username: "admin", password: "wrong", caCert: cert },
    });
    const list = await page("/ui/power");
    expect(list).toContain(A);
    expect(list).toContain(B);
    const out = await post("/ui/power/bulk", { mac: [A, B], action: "off" });
    expect(out).toContain("off: 1 of 2 done.");
    expect(out).toMatch(new RegExp(`${B} off: failed: Redfish BMC 127.0.0.1 refused the credentials`));
    expect(chassis.state).toBe("Off");
    expect(await page("/ui/power/rows")).toMatch(/power-off/);
  });
});
