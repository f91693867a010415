/** The `dhcp:` config section: sane defaults, subnet mistakes named precisely. */
import { describe, expect, it } from "vitest";
import { DhcpConfigSchema } from "../../src/dhcp/config.ts";
import { resolveLinks } from "../../src/dhcp/links.ts";

const sub = (s: Record<string, unknown>) =>
  DhcpConfigSchema.safeParse({
    mode: "full",
    subnets: [{ cidr: "10.0.0.0/24", ranges: [{ start: "10.0.0.10", end: "10.0.0.20" }], ...s }],
  });

describe("DhcpConfigSchema", () => {
  it("defaults to proxy mode with Debian's iPXE file names", () => {
    expect(DhcpConfigSchema.parse({})).toMatchObject({
      mode: "proxy",
      port: 67,
      proxyPort: 4011,
      clientPort: 68,
      interfaces: [],
      proxyFullOffer: false,
      offerSeconds: 30,
      declineSeconds: 600,
      declineMaxPercent: 10,
      bootFiles: { bios: "undionly.kpxe", efiX64: "ipxe.efi", efiIa32: "ipxe.efi", efiArm64: "ipxe-arm64.efi" },
    });
    expect(sub({}).data?.subnets[0]).toMatchObject({ leaseSeconds: 3600, dns: [] });
  });

  it.each([
    [{ cidr: "10.0.0.0/33" }, ["subnets", 0, "cidr"], /CIDR/],
    [{ cidr: "300.0.0.0/24" }, ["subnets", 0, "cidr"], /CIDR/],
    [{ ranges: [{ start: "10.0.1.1", end: "10.0.1.9" }] }, ["subnets", 0, "ranges", 0], /not inside/],
    [{ ranges: [{ start: "10.0.0.9", end: "10.0.0.1" }] }, ["subnets", 0, "ranges", 0], /after its end/],
    [{ ranges: [] }, ["subnets", 0, "ranges"], /./],
    [{ router: "192.168.0.1" }, ["subnets", 0, "router"], /not inside/],
    [{ leaseSeconds: 0 }, ["subnets", 0, "leaseSeconds"], /./],
    [{ extra: 1 }, ["subnets", 0], /extra/],
  ])("rejects %j at the right key", (patch, path, message) => {
    const r = sub(patch);
    expect(r.success).toBe(false);
    expect(r.error!.issues[0]!.path).toEqual(path);
    expect(r.error!.issues[0]!.message).toMatch(message);
  });

  it.each([0, 101, 2.5])("rejects declineMaxPercent %j naming the key", (declineMaxPercent) => {
    const r = DhcpConfigSchema.safeParse({ declineMaxPercent });
    expect(r.success).toBe(false);
    expect(r.error!.issues[0]!.path).toEqual(["declineMaxPercent"]);
  });
});

describe("serving interfaces", () => {
  const ifaces = {
    lo: [
      {
        address: "127.0.0.1",
        netmask: "255.0.0.0",
        family: "IPv4" as const,
        mac: "00:00:00:00:00:00",
        internal: true,
        cidr: "127.0.0.1/8",
      },
    ],
  };

  it("a configured interface that does not exist stops DHCP naming the key and the interface", () => {
    expect(() => resolveLinks(["eno9"], "10.0.0.1", ifaces, () => false)).toThrow(
      /^dhcp\.interfaces: eno9 does not exist$/,
    );
    expect(resolveLinks(["lo"], "10.0.0.1", ifaces)).toEqual({
      links: [{ name: "lo", address: "127.0.0.1", cidr: expect.anything() }],
      waiting: [],
    });
  });

  it("one that exists but is down, without carrier or without IPv4 is waited for", () => {
    expect(resolveLinks(["lo", "eno9"], "10.0.0.1", ifaces, (name) => name === "eno9")).toEqual({
      links: [{ name: "lo", address: "127.0.0.1", cidr: expect.anything() }],
      waiting: ["eno9"],
    });
  });
});
