/**
 * perfdhcp (Kea's load generator, acting as a relay) runs a short bounded load against full mode with
 * zero failed exchanges. Random and mutated packets are test/fuzz/dhcp.test.ts's.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Running, removeTempDirs, startKindling, tempDir } from "./harness.ts";
import { Lab, type Netns } from "./netns.ts";

// Registered first so it runs last (after hooks run in reverse): servers are stopped before their data goes.
afterAll(removeTempDirs);

const SERVER = "10.80.0.1";
let lab: Lab;
let srv: Netns;
let cli: Netns;
let kindling: Running;

beforeAll(async () => {
  lab = new Lab("kdl");
  srv = lab.ns("s");
  cli = lab.ns("c");
  lab.link(srv, "k0", `${SERVER}/16`, cli, "eth0", "10.80.0.2/16");
  cli.ip("route", "add", "default", "dev", "eth0");
  kindling = await startKindling(lab, srv, {
    config: {
      mode: "full",
      subnets: [
        {
          cidr: "10.80.0.0/16",
          ranges: [{ start: "10.80.1.0", end: "10.80.255.250" }],
          router: SERVER,
          leaseSeconds: 3600,
        },
      ],
    },
    advertise: SERVER,
    dataDir: tempDir("kindling-dhcp-load-"),
  });
});
afterAll(async () => {
  await kindling?.stop();
  await lab?.destroy();
});

describe("load and abuse", () => {
  it("perfdhcp: 600 relayed DORA exchanges at 150/s, none lost", async () => {
    // Bounded in count (-n) and time (-p); -u makes perfdhcp check that no address is handed out twice.
    const r = cli.run(
      [
        "perfdhcp",
        "-4",
        "-l",
        "10.80.0.2",
        "-r",
        "150",
        "-R",
        "600",
        "-n",
        "600",
        "-p",
        "10",
        "-u",
        "-W",
        "1000000",
        SERVER,
      ],
      {
        allowFail: true,
        timeoutMs: 40_000,
      },
    );
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const drops = [...r.stdout.matchAll(/drops: (\d+)/g)].map((m) => Number(m[1]));
    expect(drops).toEqual([0, 0]);
    const sent = [...r.stdout.matchAll(/sent packets: (\d+)/g)].map((m) => Number(m[1]));
    expect(sent).toEqual([600, 600]);
    const stats = await kindling.stats();
    expect(stats.byType.ACK).toBe(600);
    expect(stats.leases?.[0]?.used).toBe(600);
    expect(stats.malformed).toBe(0);
  });
});
