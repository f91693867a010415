/**
 * Serving interfaces. node:dgram cannot say which interface a broadcast came in on, nor pin a socket to a
 * device; a socket bound to an interface's own address sends broadcasts out of that interface only, so
 * every serving interface gets one, and its address is what Kindling calls itself on that link.
 */
import { networkInterfaces } from "node:os";
import { maskToPrefix, parseCidr, type Cidr } from "./ip.ts";

export interface Link {
  name: string;
  /** The interface's IPv4 address: socket bind address, server identifier (54) and next-server on this link. */
  address: string;
  cidr: Cidr;
}

export class LinkError extends Error {
  override name = "LinkError";
  /** Start-up treats it like a socket that cannot bind: explained, and fatal only with --strict-listeners. */
  readonly code = "ENODEV";
}

type Ifaces = ReturnType<typeof networkInterfaces>;

function ipv4Of(name: string, ifaces: Ifaces, prefer?: string): Link | undefined {
  const addrs = (ifaces[name] ?? []).filter((a) => a.family === "IPv4");
  const a = addrs.find((x) => x.address === prefer) ?? addrs[0];
  return a && { name, address: a.address, cidr: parseCidr(`${a.address}/${maskToPrefix(a.netmask)}`) };
}

/**
 * Resolves configured interface names; with none configured, the interface that holds `advertise`
 * (none found, e.g. advertise is NATed: an empty list, and Kindling answers from 0.0.0.0 only).
 */
export function resolveLinks(names: readonly string[], advertise: string, ifaces: Ifaces = networkInterfaces()): Link[] {
  if (names.length === 0) {
    for (const name of Object.keys(ifaces)) {
      if (ifaces[name]?.some((a) => a.family === "IPv4" && a.address === advertise)) return [ipv4Of(name, ifaces, advertise)!];
    }
    return [];
  }
  return names.map((name) => {
    const link = ipv4Of(name, ifaces, advertise);
    // libuv lists only interfaces that are up and running: a cable not yet plugged in looks the same.
    if (!link) throw new LinkError(`dhcp.interfaces: ${name} does not exist, has no IPv4 address, or its link is down (no carrier)`);
    return link;
  });
}
