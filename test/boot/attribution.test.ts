import { describe, expect, it } from "vitest";
import { attributeByIp, normalizeIp, RecentClients } from "../../src/boot/attribution.ts";
import type { EventInput } from "../../src/model/event.ts";

describe("RecentClients", () => {
  it("remembers the last MAC per IP, forgets old entries and bounds its size", () => {
    const r = new RecentClients(2, 1000);
    r.note("10.0.0.1", "52:54:00:00:00:01", 0);
    r.note("10.0.0.1", "52:54:00:00:00:02", 10);
    expect(r.macOf("10.0.0.1", 20)).toBe("52:54:00:00:00:02");
    expect(r.macOf("10.0.0.1", 2000)).toBeUndefined();
    r.note("10.0.0.2", "52:54:00:00:00:03", 30);
    r.note("10.0.0.3", "52:54:00:00:00:04", 40);
    expect(r.macOf("10.0.0.1", 50)).toBeUndefined(); // evicted: oldest of three with room for two
    expect(r.macOf("::ffff:10.0.0.3", 50)).toBe("52:54:00:00:00:04");
    r.note("0.0.0.0", "52:54:00:00:00:05");
    expect(r.macOf("0.0.0.0")).toBeUndefined();
  });

  it("normalizes IPv4-mapped IPv6 addresses", () => expect(normalizeIp("::ffff:192.0.2.1")).toBe("192.0.2.1"));
});

describe("attributeByIp", () => {
  it("learns from events naming both and fills in events naming only an IP", () => {
    const seen: EventInput[] = [];
    const sink = attributeByIp({ append: (e) => void seen.push(e) }, new RecentClients());
    sink.append({ mac: "52:54:00:00:00:01", kind: "dhcp.ack", detail: { ip: "10.0.0.9" } });
    sink.append({ mac: null, kind: "tftp.transfer", detail: { ip: "10.0.0.9", file: "undionly.kpxe" } });
    sink.append({ mac: null, kind: "tftp.transfer", detail: { ip: "10.0.0.10" } });
    expect(seen.map((e) => e.mac)).toEqual(["52:54:00:00:00:01", "52:54:00:00:00:01", null]);
  });
});
