/**
 * Two serving interfaces (two veth pairs to two client namespaces, two subnets): each client leases from
 * its own link's subnet and the ACK leaves only through the interface its request came in on. tcpdump on
 * the other link proves it.
 */
import type { ChildProcess } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientScripts, type Running, removeTempDirs, startKindling, tempDir, until } from "./harness.ts";
import { Lab, type Netns } from "./netns.ts";

// Registered first so it runs last (after hooks run in reverse): servers are stopped before their data goes.
afterAll(removeTempDirs);

let lab: Lab;
let srv: Netns;
let a: Netns;
let b: Netns;
let kindling: Running;
const scripts = clientScripts();

beforeAll(async () => {
  lab = new Lab("kdm");
  srv = lab.ns("s");
  a = lab.ns("a");
  b = lab.ns("b");
  lab.link(srv, "k0", "10.81.1.1/24", a, "eth0", undefined);
  lab.link(srv, "k1", "10.81.2.1/24", b, "eth0", undefined);
  kindling = await startKindling(lab, srv, {
    config: {
      mode: "full",
      interfaces: ["k0", "k1"],
      subnets: [
        { cidr: "10.81.1.0/24", ranges: [{ start: "10.81.1.100", end: "10.81.1.199" }], router: "10.81.1.1" },
        { cidr: "10.81.2.0/24", ranges: [{ start: "10.81.2.100", end: "10.81.2.199" }], router: "10.81.2.1" },
      ],
    },
    advertise: "10.81.1.1",
    dataDir: tempDir("kindling-dhcp-multi-"),
  });
});
afterAll(async () => {
  await kindling?.stop();
  await lab?.destroy();
});

function lease(ns: Netns, mac: string): string {
  ns.ip("link", "set", "eth0", "address", mac);
  ns.ip("addr", "flush", "dev", "eth0");
  const before = scripts.lines().length;
  ns.run(["busybox", "udhcpc", "-f", "-q", "-n", "-i", "eth0", "-s", scripts.udhcpc, "-t", "5", "-T", "1"], {
    timeoutMs: 30_000,
  });
  const bound = scripts
    .lines()
    .slice(before)
    .find((l) => l.startsWith("udhcpc bound"));
  if (!bound) throw new Error(scripts.lines().slice(before).join("\n"));
  return bound;
}

/** tcpdump on `ns`'s eth0 printing every DHCP packet verbosely (client hardware address included). */
async function capture(ns: Netns): Promise<{ proc: ChildProcess; text: () => string; stop: () => Promise<string> }> {
  const proc = lab.adopt(ns.spawn(["tcpdump", "-i", "eth0", "-n", "-l", "-v", "-e", "udp port 67 or udp port 68"]));
  let out = "";
  let err = "";
  proc.stdout!.on("data", (d) => (out += d));
  proc.stderr!.on("data", (d) => (err += d));
  await until("tcpdump listening", () => err.includes("listening on"));
  return {
    proc,
    text: () => out,
    stop: async () => {
      // Let the last packets reach tcpdump before it stops.
      await new Promise((r) => setTimeout(r, 300));
      proc.kill("SIGINT");
      await new Promise((r) => proc.once("exit", r));
      return out;
    },
  };
}

describe("two serving interfaces", () => {
  it("each client leases from its own link's subnet, with that link's server identifier", () => {
    expect(lease(a, "02:81:00:00:00:0a")).toMatch(/ip=10\.81\.1\.1\d\d .*serverid=10\.81\.1\.1 .*router=10\.81\.1\.1 /);
    expect(lease(b, "02:81:00:00:00:0b")).toMatch(/ip=10\.81\.2\.1\d\d .*serverid=10\.81\.2\.1 .*router=10\.81\.2\.1 /);
  });

  it("a new client's ACK leaves only through its own interface", async () => {
    const tap = await capture(a);
    expect(lease(b, "02:81:00:00:00:0c")).toMatch(/ip=10\.81\.2\.1\d\d /);
    const seen = await tap.stop();
    // Its first DISCOVER carries no hint of its link, so each link got an OFFER from its own subnet ...
    expect(seen).toMatch(/02:81:00:00:00:0c[\s\S]*DHCP-Message.*Offer/);
    // ... but the REQUEST named the other link's server, and nothing else for this client reached link a.
    expect(seen).not.toMatch(/DHCP-Message[^\n]*ACK/);
    expect(seen).not.toContain("10.81.2.");
  });

  it("a known client is answered only on its own link, from DISCOVER on", async () => {
    const tap = await capture(a);
    expect(lease(b, "02:81:00:00:00:0b")).toMatch(/ip=10\.81\.2\.1\d\d /);
    const seen = await tap.stop();
    expect(seen).not.toContain("02:81:00:00:00:0b");
    expect(seen).not.toContain("10.81.");
  });
});
