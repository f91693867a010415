/**
 * Full mode against real clients: ISC dhclient and busybox udhcpc obtain, renew and release leases from
 * Kindling inside a namespace pair; leases survive a restart.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { leasesIn } from "../helpers/database.ts";
import { clientScripts, type Running, removeTempDirs, startKindling, tempDir, until } from "./harness.ts";
import { Lab, type Netns } from "./netns.ts";

// Registered first so it runs last (after hooks run in reverse): servers are stopped before their data goes.
afterAll(removeTempDirs);

const SERVER = "10.77.0.1";
const config = {
  mode: "full",
  subnets: [
    {
      cidr: "10.77.0.0/24",
      ranges: [{ start: "10.77.0.100", end: "10.77.0.199" }],
      router: SERVER,
      dns: [SERVER],
      domain: "lab.test",
      leaseSeconds: 600,
    },
  ],
};

let lab: Lab;
let srv: Netns;
let cli: Netns;
let kindling: Running;
const dataDir = tempDir("kindling-dhcp-full-");
const scripts = clientScripts();

const leases = () => leasesIn(dataDir);

const start = () => startKindling(lab, srv, { config, advertise: SERVER, dataDir });

beforeAll(async () => {
  lab = new Lab("kdf");
  srv = lab.ns("s");
  cli = lab.ns("c");
  lab.link(srv, "k0", `${SERVER}/24`, cli, "eth0", undefined);
  kindling = await start();
});

afterAll(async () => {
  await kindling?.stop();
  await lab?.destroy();
});

describe("full mode with real clients", () => {
  it("busybox udhcpc obtains a lease, renews it by unicast and releases it", async () => {
    cli.ip("link", "set", "eth0", "address", "02:77:00:00:00:01");
    const before = scripts.lines().length;
    const udhcpc = lab.adopt(
      spawn("ip", [
        "netns",
        "exec",
        cli.name,
        "busybox",
        "udhcpc",
        "-f",
        "-i",
        "eth0",
        "-s",
        scripts.udhcpc,
        "-t",
        "5",
        "-T",
        "1",
        "-A",
        "1",
      ]),
    );
    const bound = await until("udhcpc bound", () =>
      scripts
        .lines()
        .slice(before)
        .find((l) => l.startsWith("udhcpc bound")),
    );
    expect(bound).toMatch(/ip=10\.77\.0\.1\d\d /);
    expect(bound).toContain(`serverid=${SERVER}`);
    expect(bound).toContain(`router=${SERVER}`);
    expect(bound).toContain("mask=24");
    const ip = bound.match(/ip=(\S+)/)![1]!;
    expect(leases().find((l) => l.ip === ip)).toMatchObject({ mac: "02:77:00:00:00:01", state: "bound" });

    const statsBefore = await kindling.stats();
    udhcpc.kill("SIGUSR1");
    const renewed = await until("udhcpc renew", () =>
      scripts
        .lines()
        .slice(before)
        .find((l) => l.startsWith("udhcpc renew")),
    );
    expect(renewed).toContain(`ip=${ip}`);
    const statsAfter = await kindling.stats();
    // udhcpc may retransmit its renewal while the server resolves the client's new address by ARP.
    expect(statsAfter.byType.ACK).toBeGreaterThan(statsBefore.byType.ACK ?? 0);
    expect(statsAfter.byType.NAK).toBeUndefined();

    udhcpc.kill("SIGUSR2");
    await until("lease released", () => leases().find((l) => l.ip === ip && l.state === "released"));
    udhcpc.kill("SIGKILL");
  });

  it("ISC dhclient obtains a lease, gets it again in INIT-REBOOT and releases it", async () => {
    cli.ip("link", "set", "eth0", "address", "02:77:00:00:00:02");
    cli.ip("addr", "flush", "dev", "eth0");
    const lf = join(scripts.dir, "dhclient.leases");
    const pf = join(scripts.dir, "dhclient.pid");
    const dh = ["dhclient", "-1", "-v", "-lf", lf, "-pf", pf, "-sf", scripts.dhclient];
    const before = scripts.lines().length;
    cli.run([...dh, "eth0"], { timeoutMs: 30_000 });
    const bound = scripts
      .lines()
      .slice(before)
      .find((l) => l.startsWith("dhclient BOUND"));
    expect(bound, scripts.lines().join("\n")).toBeDefined();
    const ip = bound!.match(/ip=(\S+)/)![1]!;
    expect(bound).toContain(`server=${SERVER}`);
    cli.run(["dhclient", "-x", "-pf", pf, "-lf", lf, "-sf", scripts.dhclient, "eth0"]);

    // With the lease file, dhclient starts in INIT-REBOOT: REQUEST with option 50, no server identifier.
    const mid = scripts.lines().length;
    cli.run([...dh, "eth0"], { timeoutMs: 30_000 });
    const reboot = scripts
      .lines()
      .slice(mid)
      .find((l) => l.startsWith("dhclient REBOOT"));
    expect(reboot, scripts.lines().join("\n")).toContain(`ip=${ip}`);

    cli.run(["dhclient", "-r", "-v", "-pf", pf, "-lf", lf, "-sf", scripts.dhclient, "eth0"], { timeoutMs: 30_000 });
    await until("dhclient lease released", () => leases().find((l) => l.ip === ip && l.state === "released"));
  });

  it("keeps leases across a restart and answers the same client with the same address", async () => {
    cli.ip("link", "set", "eth0", "address", "02:77:00:00:00:03");
    cli.ip("addr", "flush", "dev", "eth0");
    const before = scripts.lines().length;
    cli.run(["busybox", "udhcpc", "-f", "-q", "-n", "-i", "eth0", "-s", scripts.udhcpc, "-t", "5", "-T", "1"], {
      timeoutMs: 30_000,
    });
    const ip = scripts
      .lines()
      .slice(before)
      .find((l) => l.startsWith("udhcpc bound"))!
      .match(/ip=(\S+)/)![1]!;

    await kindling.stop();
    kindling = await start();
    expect(leases().find((l) => l.ip === ip)).toMatchObject({ mac: "02:77:00:00:00:03", state: "bound" });
    const stats = await kindling.stats();
    expect(stats.leases?.[0]?.used).toBeGreaterThanOrEqual(1);

    // A fresh DISCOVER (no requested address) from the same MAC gets its restored lease back.
    cli.ip("addr", "flush", "dev", "eth0");
    const mid = scripts.lines().length;
    cli.run(["busybox", "udhcpc", "-f", "-q", "-n", "-i", "eth0", "-s", scripts.udhcpc, "-t", "5", "-T", "1"], {
      timeoutMs: 30_000,
    });
    expect(
      scripts
        .lines()
        .slice(mid)
        .find((l) => l.startsWith("udhcpc bound")),
    ).toContain(`ip=${ip} `);

    // Another client must not get it.
    cli.ip("link", "set", "eth0", "address", "02:77:00:00:00:04");
    cli.ip("addr", "flush", "dev", "eth0");
    const end = scripts.lines().length;
    cli.run(
      ["busybox", "udhcpc", "-f", "-q", "-n", "-i", "eth0", "-s", scripts.udhcpc, "-t", "5", "-T", "1", "-r", ip],
      { timeoutMs: 30_000 },
    );
    const other = scripts
      .lines()
      .slice(end)
      .find((l) => l.startsWith("udhcpc bound"));
    expect(other).toMatch(/ip=10\.77\.0\.1\d\d /);
    expect(other).not.toContain(`ip=${ip} `);
  });
});

describe("full mode lease timers", () => {
  it("ISC dhclient renews at T1 by unicast (RENEWING) and keeps its address", async () => {
    const lab2 = new Lab("kdr");
    try {
      const s = lab2.ns("s");
      const c = lab2.ns("c");
      lab2.link(s, "k0", "10.76.0.1/24", c, "eth0", undefined);
      const short = await startKindling(lab2, s, {
        // A 4 s lease: T1 (renewal) after 2 s.
        config: {
          mode: "full",
          subnets: [{ cidr: "10.76.0.0/24", ranges: [{ start: "10.76.0.100", end: "10.76.0.110" }], leaseSeconds: 4 }],
        },
        advertise: "10.76.0.1",
        dataDir: tempDir("kindling-dhcp-renew-"),
      });
      const mine = clientScripts();
      const dh = lab2.adopt(
        spawn("ip", [
          "netns",
          "exec",
          c.name,
          "dhclient",
          "-d",
          "-v",
          "-lf",
          join(mine.dir, "l"),
          "-pf",
          join(mine.dir, "p"),
          "-sf",
          mine.dhclient,
          "eth0",
        ]),
      );
      const bound = await until("dhclient bound", () => mine.lines().find((l) => l.startsWith("dhclient BOUND")));
      const ip = bound.match(/ip=(\S+)/)![1]!;
      const before = await short.stats();
      const renew = await until(
        "dhclient renew",
        () => mine.lines().find((l) => l.startsWith("dhclient RENEW")),
        15_000,
      );
      expect(renew).toContain(`ip=${ip} `);
      const after = await short.stats();
      expect(after.byType.ACK).toBeGreaterThan(before.byType.ACK ?? 0);
      dh.kill("SIGKILL");
      await short.stop();
    } finally {
      await lab2.destroy();
    }
  });
});
