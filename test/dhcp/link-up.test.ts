/**
 * A configured interface with no carrier at start (cable not plugged in yet) is served once its link comes
 * up, without a restart; until then nothing listens on port 67, so no broadcast can be answered out of
 * another interface.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientScripts, type Running, removeTempDirs, startKindling, tempDir } from "./harness.ts";
import { Lab, type Netns } from "./netns.ts";

afterAll(removeTempDirs);

let lab: Lab;
let srv: Netns;
let client: Netns;
let kindling: Running;
const scripts = clientScripts();

const listening67 = () => srv.run(["ss", "-ulnH", "sport = :67"]).stdout.trim();

beforeAll(async () => {
  lab = new Lab("kdl");
  srv = lab.ns("s");
  client = lab.ns("c");
  lab.link(srv, "k0", "10.82.1.1/24", client, "eth0", undefined);
  // The far end down: k0 keeps its address but has no carrier, as with an unplugged cable.
  client.ip("link", "set", "eth0", "down");
  kindling = await startKindling(lab, srv, {
    config: {
      mode: "full",
      interfaces: ["k0"],
      subnets: [{ cidr: "10.82.1.0/24", ranges: [{ start: "10.82.1.100", end: "10.82.1.150" }], router: "10.82.1.1" }],
    },
    advertise: "10.82.1.1",
    dataDir: tempDir("kindling-dhcp-linkup-"),
  });
});
afterAll(async () => {
  await kindling?.stop();
  await lab?.destroy();
});

describe("a serving interface without carrier at start", () => {
  it("is not listened on while it is down", () => {
    expect(srv.ip("-br", "link", "show", "k0")).toContain("NO-CARRIER");
    expect(listening67()).toBe("");
  });

  it("is served once its link comes up", () => {
    client.ip("link", "set", "eth0", "up");
    // udhcpc retries every second for up to 15 s; Kindling looks for the interface every second.
    client.run(["busybox", "udhcpc", "-f", "-q", "-n", "-i", "eth0", "-s", scripts.udhcpc, "-t", "15", "-T", "1"], {
      timeoutMs: 30_000,
    });
    const bound = scripts.lines().find((l) => l.startsWith("udhcpc bound"));
    expect(bound).toMatch(/ip=10\.82\.1\.1\d\d .*serverid=10\.82\.1\.1 /);
    expect(listening67()).toContain("10.82.1.1:67");
    expect(listening67()).toContain("0.0.0.0:67");
  });
});
