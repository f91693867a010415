import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { freeUdpPort, type Running, startTestKindling } from "../helpers/kindling.ts";
import { scratchDir } from "./rig/scratch.ts";

const USER = "kindling";
const PASSWORD = "Ipmi-Unit-Pw-31b";

let dir: string;
let sim: ChildProcess;
let lanPort: number;
let k: Running;

/**
 * ipmi_sim on loopback with a chassis-control program (OpenIPMI's hook for the machine behind the BMC): it
 * keeps power and boot device in files and logs every call, so the test sees what reached the chassis.
 */
beforeAll(async () => {
  dir = scratchDir("kindling-ipmi-");
  lanPort = await freeUdpPort();
  const prog = join(dir, "chassis.sh");
  writeFileSync(
    prog,
    `#!/bin/sh
echo "$*" >> ${dir}/calls
op=$1; shift
if [ "$op" = get ]; then
  for p in "$@"; do echo "$p:$(cat ${dir}/$p 2>/dev/null || { [ $p = boot ] && echo default || echo 0; })"; done
else
  while [ $# -ge 2 ]; do echo "$2" > ${dir}/$1; shift 2; done
fi
`,
  );
  chmodSync(prog, 0o755);
  const auths = "none md2 md5 straight";
  writeFileSync(
    join(dir, "lan.conf"),
    [
      `name "kindling-unit"`,
      "set_working_mc 0x20",
      "  startlan 1",
      `    addr 127.0.0.1 ${lanPort}`,
      "    priv_limit admin",
      ...["callback", "user", "operator", "admin"].map((p) => `    allowed_auths_${p} ${auths}`),
      "    guid a123456789abcdefa123456789abcdef",
      "  endlan",
      `  chassis_control "${prog}"`,
      `  user 2 true "${USER}" "${PASSWORD}" admin 10 ${auths}`,
      "",
    ].join("\n"),
  );
  writeFileSync(
    join(dir, "ipmi.emu"),
    "mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nmc_enable 0x20\n",
  );
  sim = spawn("ipmi_sim", ["-c", join(dir, "lan.conf"), "-f", join(dir, "ipmi.emu"), "-s", dir, "-n"], {
    stdio: "ignore",
  });
  k = await startTestKindling({ power: { pollSeconds: 0, timeoutSeconds: 10 } });
});
afterAll(async () => {
  await k?.stop();
  sim?.kill("SIGKILL");
});

let n = 0;
async function machine(bmc: Record<string, unknown> = {}, fields: Record<string, unknown> = {}): Promise<string> {
  const mac = `52:54:00:18:04:${(n++).toString(16).padStart(2, "0")}`;
  expect((await k.api("/machines", { method: "POST", json: { mac, ...fields } })).status).toBe(201);
  const body = {
    driver: "ipmi",
    address: "127.0.0.1",
    port: lanPort,
    cipherSuite: 3,
    username: USER,
    password: PASSWORD,
    ...bmc,
  };
  expect((await k.api(`/machines/${mac}/bmc`, { method: "PUT", json: body })).status).toBe(200);
  return mac;
}
const act = async (mac: string, action: string) =>
  (await k.api(`/machines/${mac}/power`, { method: "POST", json: { action } })).json();
const calls = () => (existsSync(join(dir, "calls")) ? readFileSync(join(dir, "calls"), "utf8") : "");

describe("IPMI through ipmitool against OpenIPMI's ipmi_sim", () => {
  test("status, on, off, reset, cycle reach the chassis", async () => {
    const mac = await machine();
    // The simulator may still be starting: the first answer within the bound is the proof it is up.
    const deadline = Date.now() + 10_000;
    let first = await act(mac, "status");
    while (!first.ok && Date.now() < deadline) first = await act(mac, "status");
    expect(first).toMatchObject({ ok: true, state: "off", answer: "Chassis Power is off" });
    expect(await act(mac, "on")).toMatchObject({ ok: true, answer: "Chassis Power Control: Up/On" });
    expect(await act(mac, "status")).toMatchObject({ state: "on" });
    expect(await act(mac, "reset")).toMatchObject({ ok: true, answer: "Chassis Power Control: Reset" });
    expect(await act(mac, "off")).toMatchObject({ ok: true, answer: "Chassis Power Control: Down/Off" });
    expect(calls()).toMatch(/set power 1\n[\s\S]*set reset 1\n[\s\S]*set power 0\n/);
    expect(await act(mac, "cycle")).toMatchObject({ ok: true, answer: "Chassis Power Control: Cycle" });
    const history = (await (await k.api(`/events?mac=${mac}`)).json()).map((e: { kind: string }) => e.kind);
    expect(history).toEqual(
      expect.arrayContaining(["power.on", "power.reset", "power.off", "power.cycle", "power.status"]),
    );
  });

  test("pxe-once sets the boot device the BMC reports back", async () => {
    const mac = await machine();
    const r = await act(mac, "pxe-once");
    expect(r).toMatchObject({ ok: true });
    expect(r.answer).toMatch(/Set Boot Device to pxe/);
    expect(calls()).toMatch(/set boot pxe/);
    const param = execFileSync(
      "ipmitool",
      [
        "-I",
        "lanplus",
        "-C",
        "3",
        "-H",
        "127.0.0.1",
        "-p",
        String(lanPort),
        "-U",
        USER,
        "-E",
        "chassis",
        "bootparam",
        "get",
        "5",
      ],
      { encoding: "utf8", env: { ...process.env, IPMI_PASSWORD: PASSWORD }, stdio: ["ignore", "pipe", "pipe"] },
    );
    expect(param).toMatch(/Force PXE/);
  });

  test("wrong password: a clear authentication error", async () => {
    const mac = await machine({ password: "wrong-password" });
    const r = await act(mac, "status");
    expect(r).toMatchObject({ ok: false, errorKind: "auth" });
    expect(r.answer).toMatch(/^ipmitool: authentication refused \(.*RAKP 2 HMAC is invalid/);
  });
});

describe("what ipmitool is given", () => {
  test("the password only in its environment (-E), never in argv; efiboot for a UEFI machine", async () => {
    const spy = join(scratchDir("kindling-ipmitool-"), "ipmitool");
    const out = `${spy}.out`;
    // Records what `ps` would show (argv) and whether the environment carried the password.
    writeFileSync(
      spy,
      `#!/bin/sh\nprintf '%s\\n' "$@" > ${out}\n[ "$IPMI_PASSWORD" = "${PASSWORD}" ] && echo env-ok >> ${out}\necho "Set Boot Device to pxe"\n`,
    );
    chmodSync(spy, 0o755);
    const spied = await startTestKindling({ power: { pollSeconds: 0, ipmitool: spy } });
    try {
      const mac = "52:54:00:18:05:01";
      await spied.api("/machines", { method: "POST", json: { mac, loader: "grub" } });
      await spied.api(`/machines/${mac}/bmc`, {
        method: "PUT",
        json: { driver: "ipmi", address: "10.0.0.9", username: USER, password: PASSWORD },
      });
      expect(
        await (await spied.api(`/machines/${mac}/power`, { method: "POST", json: { action: "pxe-once" } })).json(),
      ).toMatchObject({
        ok: true,
      });
      const argv = readFileSync(out, "utf8");
      expect(argv).toContain("env-ok");
      expect(argv.replace("env-ok", "")).not.toContain(PASSWORD);
      expect(argv.split("\n")).toEqual(
        expect.arrayContaining([
          "-I",
          "lanplus",
          "-H",
          "10.0.0.9",
          "-p",
          "623",
          "-E",
          "bootdev",
          "pxe",
          "options=efiboot",
        ]),
      );
    } finally {
      await spied.stop();
    }
  });
});
