/**
 * PXE clients get the right boot file per architecture and iPXE gets the script URL: in full mode with
 * busybox udhcpc as the PXE client, and in proxy mode beside dnsmasq (the network's ordinary DHCP server)
 * with the scripted client doing the port-4011 step.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Store } from "../../src/store/index.ts";
import type { ReplySummary } from "./client.ts";
import { clientScripts, type Running, removeTempDirs, runClient, startKindling, tempDir, until } from "./harness.ts";
import { Lab, type Netns } from "./netns.ts";

// Registered first so it runs last (after hooks run in reverse): servers are stopped before their data goes.
afterAll(removeTempDirs);

const UUID = "4c4c4544-0051-3510-8052-b4c04f4b4e31";
/** Option 97 as udhcpc -x hex: type 0, then the UUID with its first three fields little-endian. */
const GUID_HEX = `00${"4445 4c4c 5100 1035 8052b4c04f4b4e31".replace(/ /g, "")}`;

/** A live profile (boots from the network every time) and an install profile, once per data dir. */
function addProfiles(s: Store): void {
  const flatcar = { channel: "stable", version: "current", arch: "amd64" } as const;
  if (!s.profiles.get("live")) s.profiles.create({ name: "live", description: "", flatcar, kernelArgs: [], vars: {} });
  if (!s.profiles.get("install"))
    s.profiles.create({
      name: "install",
      description: "",
      flatcar,
      install: { extraArgs: [] },
      kernelArgs: [],
      vars: {},
    });
}

function withStore<T>(dataDir: string, fn: (s: Store) => T): T {
  const s = Store.open(dataDir);
  try {
    return fn(s);
  } finally {
    s.close();
  }
}

describe("full mode: udhcpc as a PXE client", () => {
  const SERVER = "10.78.0.1";
  let lab: Lab;
  let srv: Netns;
  let cli: Netns;
  let kindling: Running;
  const dataDir = tempDir("kindling-dhcp-pxe-");
  const scripts = clientScripts();

  beforeAll(async () => {
    lab = new Lab("kdp");
    srv = lab.ns("s");
    cli = lab.ns("c");
    lab.link(srv, "k0", `${SERVER}/24`, cli, "eth0", undefined);
    kindling = await startKindling(lab, srv, {
      config: {
        mode: "full",
        subnets: [{ cidr: "10.78.0.0/24", ranges: [{ start: "10.78.0.10", end: "10.78.0.60" }], router: SERVER }],
      },
      advertise: SERVER,
      dataDir,
      httpPort: 8080,
    });
  });
  afterAll(async () => {
    await kindling?.stop();
    await lab?.destroy();
  });

  /** One udhcpc exchange (DISCOVER/OFFER/REQUEST/ACK) from `mac`; returns the hook line for `bound`. */
  function udhcpc(mac: string, vendor: string, extra: string[]): string {
    cli.ip("link", "set", "eth0", "address", mac);
    cli.ip("addr", "flush", "dev", "eth0");
    const before = scripts.lines().length;
    cli.run(
      [
        "busybox",
        "udhcpc",
        "-f",
        "-q",
        "-n",
        "-i",
        "eth0",
        "-s",
        scripts.udhcpc,
        "-t",
        "5",
        "-T",
        "1",
        "-V",
        vendor,
        ...extra,
      ],
      { timeoutMs: 30_000 },
    );
    const bound = scripts
      .lines()
      .slice(before)
      .find((l) => l.startsWith("udhcpc bound"));
    if (!bound) throw new Error(`no lease for ${mac}:\n${scripts.lines().slice(before).join("\n")}`);
    return bound;
  }

  const cases: [string, number, string, string[], string][] = [
    ["BIOS", 0, "PXEClient:Arch:00000:UNDI:002001", [], "undionly.kpxe"],
    ["x64 UEFI (7)", 7, "PXEClient:Arch:00007:UNDI:003016", [], "ipxe.efi"],
    ["x64 UEFI (9)", 9, "PXEClient:Arch:00009:UNDI:003016", [], "ipxe.efi"],
    ["arm64 UEFI", 11, "PXEClient:Arch:00011:UNDI:003016", [], "grubnetaa64.efi"],
    ["x64 UEFI HTTP", 16, "HTTPClient:Arch:00016:UNDI:003001", [], `http://${SERVER}:8080/ipxe-bin/ipxe.efi`],
    ["iPXE", 0, "PXEClient:Arch:00000:UNDI:002001", ["-x", "0x4d:69505845"], `http://${SERVER}:8080/boot.ipxe`],
  ];
  it.each(cases)("%s gets its boot file", async (_name, arch, vendor, extra, file) => {
    const mac = `02:78:00:00:00:${(10 + cases.findIndex((c) => c[0] === _name)).toString(16).padStart(2, "0")}`;
    const bound = udhcpc(mac, vendor, [
      "-x",
      `0x5d:${arch.toString(16).padStart(4, "0")}`,
      "-x",
      "0x5e:010201",
      "-x",
      `0x61:${GUID_HEX}`,
      ...extra,
    ]);
    expect(bound).toMatch(/ip=10\.78\.0\.\d+ /);
    expect(bound).toContain(`boot_file=${file} `);
    expect(bound).toContain(`siaddr=${SERVER} `);
    const machine = withStore(dataDir, (s) => s.machines.get(mac));
    expect(machine).toMatchObject({ state: "discovered", arch: arch === 11 ? "arm64" : "amd64", uuid: UUID });
    const events = (await withStore(dataDir, (s) => s.events.list({ mac }))).map((e) => e.kind);
    expect(events).toEqual(expect.arrayContaining(["dhcp.offer", "dhcp.ack"]));
    // The machine's story starts here, before iPXE ever runs: discovered once, on its first DISCOVER.
    expect(events.at(-1)).toBe("machine.discovered");
    expect(events.filter((k) => k === "machine.discovered")).toHaveLength(1);
  });

  it("an installed machine gets its lease but no boot file", () => {
    const mac = "02:78:00:00:00:99";
    withStore(dataDir, (s) => {
      s.machines.create({ mac, labels: {}, metadata: {} }, "discovered");
      s.machines.setState(mac, "installed");
    });
    const bound = udhcpc(mac, "PXEClient:Arch:00007:UNDI:003016", ["-x", "0x5d:0007"]);
    expect(bound).toMatch(/ip=10\.78\.0\.\d+ /);
    expect(bound).toContain("boot_file= ");
  });

  it("a running machine of a live profile gets its boot file on every power-on; of an install profile, none", () => {
    const live = "02:78:00:00:00:97";
    const installed = "02:78:00:00:00:96";
    withStore(dataDir, (s) => {
      addProfiles(s);
      s.machines.create({ mac: live, labels: {}, metadata: {}, profile: "live" }, "ready");
      s.machines.setState(live, "running");
      s.machines.create({ mac: installed, labels: {}, metadata: {}, profile: "install" }, "ready");
      s.machines.setState(installed, "running");
    });
    expect(udhcpc(live, "PXEClient:Arch:00007:UNDI:003016", ["-x", "0x5d:0007"])).toContain("boot_file=ipxe.efi ");
    expect(udhcpc(installed, "PXEClient:Arch:00007:UNDI:003016", ["-x", "0x5d:0007"])).toContain("boot_file= ");
  });

  it("an unknown arch gets a lease without a boot file and one event", async () => {
    const mac = "02:78:00:00:00:98";
    const bound = udhcpc(mac, "PXEClient:Arch:00010:UNDI:003016", ["-x", "0x5d:000a"]);
    expect(bound).toContain("boot_file= ");
    const kinds = (await withStore(dataDir, (s) => s.events.list({ mac }))).map((e) => e.kind);
    expect(kinds.filter((k) => k === "dhcp.unknown-arch")).toHaveLength(1);
  });
});

describe("proxy mode beside dnsmasq", () => {
  const KINDLING = "10.79.0.2";
  const DNSMASQ = "10.79.0.1";
  let lab: Lab;
  let kns: Netns;
  let dns: Netns;
  let cli: Netns;
  let kindling: Running;
  const dataDir = tempDir("kindling-dhcp-proxy-");

  beforeAll(async () => {
    lab = new Lab("kdx");
    kns = lab.ns("k");
    dns = lab.ns("d");
    cli = lab.ns("c");
    // The client's LAN is a bridge with Kindling and dnsmasq each on a port.
    cli.ip("link", "add", "br0", "type", "bridge");
    lab.link(kns, "k0", `${KINDLING}/24`, cli, "pk", undefined);
    lab.link(dns, "d0", `${DNSMASQ}/24`, cli, "pd", undefined);
    for (const port of ["pk", "pd"]) cli.ip("link", "set", port, "master", "br0");
    cli.ip("addr", "add", "10.79.0.50/24", "dev", "br0");
    cli.ip("link", "set", "br0", "up");
    cli.ip("route", "add", "default", "dev", "br0");
    const leasefile = join(dataDir, "dnsmasq.leases");
    writeFileSync(leasefile, "");
    const dnsmasq = lab.adopt(
      dns.spawn([
        "dnsmasq",
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        "--port=0",
        "--interface=d0",
        "--bind-interfaces",
        "--dhcp-range=10.79.0.100,10.79.0.150,255.255.255.0,1h",
        `--dhcp-leasefile=${leasefile}`,
        "--no-ping",
        "--pid-file=",
        "--user=root",
      ]),
    );
    let dnsmasqErr = "";
    dnsmasq.stderr!.on("data", (d) => (dnsmasqErr += d));
    await until(
      "dnsmasq listening",
      () =>
        dns.run(["ss", "-ulnp"], { allowFail: true }).stdout.includes("dnsmasq") ||
        (dnsmasq.exitCode !== null
          ? (() => {
              throw new Error(`dnsmasq exited: ${dnsmasqErr}`);
            })()
          : undefined),
    );
    kindling = await startKindling(lab, kns, {
      config: { mode: "proxy" },
      advertise: KINDLING,
      dataDir,
      httpPort: 8080,
    });
  });
  afterAll(async () => {
    await kindling?.stop();
    await lab?.destroy();
  });

  type Result = { offers: ReplySummary[]; ack?: ReplySummary };
  // Boot clients expect two offers (dnsmasq's and Kindling's); the tests of silence wait the full time.
  const pxe = (mac: string, s: Record<string, unknown>) =>
    runClient<Result>(cli, {
      op: "pxe",
      mac,
      uuid: UUID,
      listenMs: 1500,
      expectOffers: 2,
      ciaddr: "10.79.0.50",
      request4011: true,
      ...s,
    });
  const fromKindling = (r: Result) => r.offers.filter((o) => o.serverId === KINDLING);
  const fromDnsmasq = (r: Result) => r.offers.filter((o) => o.serverId === DNSMASQ);

  it("BIOS: dnsmasq offers the address, Kindling a proxy offer with the file and 43.6 = 8", () => {
    const r = pxe("02:79:00:00:00:01", { arch: 0, vendorClass: "PXEClient:Arch:00000:UNDI:002001" });
    expect(fromDnsmasq(r)[0]?.yiaddr).toMatch(/^10\.79\.0\.1\d\d$/);
    const [offer, ...more] = fromKindling(r);
    expect(more).toHaveLength(0);
    expect(offer).toMatchObject({
      yiaddr: "0.0.0.0",
      siaddr: KINDLING,
      file: "undionly.kpxe",
      vendorClass: "PXEClient",
      guid: UUID,
    });
    expect(offer!.sub43).toMatchObject({ "6": "08" });
    expect(offer!.size).toBeGreaterThanOrEqual(300);
  });

  it.each([
    [7, "ipxe.efi"],
    [9, "ipxe.efi"],
    [11, "grubnetaa64.efi"],
  ])("UEFI arch %i: proxy offer without a file, then the file in the ACK on port 4011", (arch, file) => {
    const mac = `02:79:00:00:01:${arch.toString(16).padStart(2, "0")}`;
    const r = pxe(mac, { arch, vendorClass: `PXEClient:Arch:${String(arch).padStart(5, "0")}:UNDI:003016` });
    expect(fromDnsmasq(r)).toHaveLength(1);
    const offer = fromKindling(r)[0]!;
    expect(offer).toMatchObject({
      yiaddr: "0.0.0.0",
      siaddr: KINDLING,
      file: "",
      vendorClass: "PXEClient",
      guid: UUID,
    });
    expect(offer.sub43).toBeUndefined();
    expect(r.ack).toMatchObject({ from: KINDLING, yiaddr: "0.0.0.0", file, vendorClass: "PXEClient", guid: UUID });
    // The boot item the client asked for (43.71) comes back.
    expect(r.ack!.sub43).toMatchObject({ "71": "80000000" });
    expect(withStore(dataDir, (s) => s.machines.get(mac))).toMatchObject({
      state: "discovered",
      arch: arch === 11 ? "arm64" : "amd64",
      uuid: UUID,
    });
  });

  it("UEFI HTTP boot gets the binary's URL with HTTPClient", () => {
    const r = pxe("02:79:00:00:00:16", { arch: 16, vendorClass: "HTTPClient:Arch:00016:UNDI:003001" });
    expect(fromKindling(r)[0]).toMatchObject({
      file: `http://${KINDLING}:8080/ipxe-bin/ipxe.efi`,
      vendorClass: "HTTPClient",
    });
  });

  it("iPXE (user class iPXE) gets the boot script URL", () => {
    const r = pxe("02:79:00:00:00:20", {
      arch: 0,
      vendorClass: "PXEClient:Arch:00000:UNDI:002001",
      userClassHex: "69505845",
      ipxeOptions: true,
    });
    expect(fromKindling(r)[0]).toMatchObject({ file: `http://${KINDLING}:8080/boot.ipxe`, siaddr: KINDLING });
  });

  it("never answers an ordinary client or an installed machine", () => {
    const plain = pxe("02:79:00:00:00:30", {});
    expect(fromDnsmasq(plain)).toHaveLength(1);
    expect(fromKindling(plain)).toHaveLength(0);
    const mac = "02:79:00:00:00:31";
    withStore(dataDir, (s) => {
      s.machines.create({ mac, labels: {}, metadata: {} }, "discovered");
      s.machines.setState(mac, "installed");
    });
    const installed = pxe(mac, { arch: 0, vendorClass: "PXEClient:Arch:00000:UNDI:002001" });
    expect(fromDnsmasq(installed)).toHaveLength(1);
    expect(fromKindling(installed)).toHaveLength(0);
  });

  it("answers a running machine of a live profile again: it boots from the network every time", () => {
    const mac = "02:79:00:00:00:32";
    withStore(dataDir, (s) => {
      addProfiles(s);
      s.machines.create({ mac, labels: {}, metadata: {}, profile: "live" }, "ready");
      s.machines.setState(mac, "running");
    });
    const r = pxe(mac, { arch: 0, vendorClass: "PXEClient:Arch:00000:UNDI:002001" });
    expect(fromKindling(r)[0]).toMatchObject({ file: "undionly.kpxe", siaddr: KINDLING });
  });
});
