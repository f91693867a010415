import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Netns } from "../../e2e/rig/netns.ts";
import { shellQuote } from "./guest.ts";

export interface IpmiSimOptions {
  ns: Netns;
  dir: string;
  username: string;
  password: string;
  /** The guest's command line; ipmi_sim runs it on power-on and talks to it over the VM serial protocol. */
  guest: (vmPort: number) => string[];
  /** UDP port of the LAN interface on 127.0.0.1 inside the namespace (623 by default). */
  lanPort?: number;
  vmPort?: number;
}

export interface IpmiSim {
  lanPort: number;
  /** ipmitool inside the namespace, password by environment (as Kindling passes it). */
  ipmitool(args: string[]): string;
}

/**
 * OpenIPMI's BMC simulator inside the test's namespace: its LAN interface (RMCP+) on 127.0.0.1, its system
 * interface a TCP port QEMU's `ipmi-bmc-extern` connects to (the VM codec, over which it powers the guest off
 * and resets it), and `startcmd` to power the guest on. Killed with the namespace.
 */
export async function startIpmiSim(o: IpmiSimOptions): Promise<IpmiSim> {
  const lanPort = o.lanPort ?? 623;
  const vmPort = o.vmPort ?? 9002;
  const state = join(o.dir, "ipmi-state");
  mkdirSync(state, { recursive: true });
  const start = join(o.dir, "ipmi-guest.sh");
  writeFileSync(
    start,
    `#!/bin/sh\nexec ${o.guest(vmPort).map(shellQuote).join(" ")} >>${shellQuote(join(o.dir, "qemu.log"))} 2>&1\n`,
  );
  chmodSync(start, 0o755);
  const conf = join(o.dir, "lan.conf");
  const auths = "none md2 md5 straight";
  writeFileSync(
    conf,
    [
      `name "kindling-e2e"`,
      "set_working_mc 0x20",
      "  startlan 1",
      `    addr 127.0.0.1 ${lanPort}`,
      "    priv_limit admin",
      ...["callback", "user", "operator", "admin"].map((p) => `    allowed_auths_${p} ${auths}`),
      "    guid a123456789abcdefa123456789abcdef",
      "  endlan",
      `  serial kcs 127.0.0.1 ${vmPort} codec VM`,
      `  startcmd "${start}"`,
      "  startnow false",
      "  poweroff_wait 5",
      "  kill_wait 2",
      `  user 2 true "${o.username}" "${o.password}" admin 10 ${auths}`,
      "",
    ].join("\n"),
  );
  const emu = join(o.dir, "ipmi.emu");
  writeFileSync(
    emu,
    [
      "mc_setbmc 0x20",
      "mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr",
      "sel_enable 0x20 1000 0x0a",
      "mc_enable 0x20",
      "",
    ].join("\n"),
  );
  o.ns.spawn("ipmi_sim", ["-c", conf, "-f", emu, "-s", state, "-n"], { stdio: "ignore" });
  const sim: IpmiSim = {
    lanPort,
    ipmitool: (args) =>
      execFileSync(
        "ip",
        [
          "netns",
          "exec",
          o.ns.name,
          "ipmitool",
          "-I",
          "lanplus",
          "-C",
          "3",
          "-H",
          "127.0.0.1",
          "-p",
          String(lanPort),
          "-U",
          o.username,
          "-E",
          ...args,
        ],
        {
          encoding: "utf8",
          env: { ...process.env, IPMI_PASSWORD: o.password },
          timeout: 30_000,
          stdio: ["ignore", "pipe", "pipe"],
        },
      ),
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      if (/Chassis Power is/.test(sim.ipmitool(["chassis", "power", "status"]))) return sim;
    } catch (err) {
      if (Date.now() > deadline)
        throw new Error(`ipmi_sim did not answer on 127.0.0.1:${lanPort}: ${(err as Error).message}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The guest's extra QEMU arguments for an IPMI BMC on `vmPort`: a KCS interface backed by the external BMC. */
export const ipmiGuestArgs = (vmPort: number) => [
  "-chardev",
  `socket,id=ipmi0,host=127.0.0.1,port=${vmPort},reconnect=2`,
  "-device",
  "ipmi-bmc-extern,id=bmc0,chardev=ipmi0",
  "-device",
  "isa-ipmi-kcs,bmc=bmc0",
];
