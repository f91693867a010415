/**
 * Serving interfaces. node:dgram cannot say which interface a broadcast came in on, nor pin a socket to a
 * device; a socket bound to an interface's own address sends broadcasts out of that interface only, so
 * every serving interface gets one, and its address is what Kindling calls itself on that link.
 */
import { existsSync } from "node:fs";
import { networkInterfaces } from "node:os";
import { type Cidr, maskToPrefix, parseCidr } from "./ip.ts";

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

const interfaceExists = (name: string): boolean => process.platform !== "linux" || existsSync(`/sys/class/net/${name}`);

export interface ResolvedLinks {
  /** Usable now. */
  links: Link[];
  /** Configured interfaces that exist but are down, without carrier or without an IPv4 address yet. */
  waiting: string[];
}

/**
 * Resolves configured interface names; with none configured, the interface that holds `advertise`
 * (none found, e.g. advertise is NATed: no links, and Kindling answers from 0.0.0.0 only). A configured
 * name that does not exist is a configuration error; one that exists but is not usable yet (libuv lists only
 * interfaces that are up and running, so a cable not yet plugged in looks the same as a missing address)
 * is waited for.
 */
export function resolveLinks(
  names: readonly string[],
  advertise: string,
  ifaces: Ifaces = networkInterfaces(),
  exists: (name: string) => boolean = interfaceExists,
): ResolvedLinks {
  if (names.length === 0) {
    for (const name of Object.keys(ifaces)) {
      if (ifaces[name]?.some((a) => a.family === "IPv4" && a.address === advertise))
        return { links: [ipv4Of(name, ifaces, advertise)!], waiting: [] };
    }
    return { links: [], waiting: [] };
  }
  const links: Link[] = [];
  const waiting: string[] = [];
  for (const name of names) {
    const link = ipv4Of(name, ifaces, advertise);
    if (link) links.push(link);
    else if (exists(name)) waiting.push(name);
    else throw new LinkError(`dhcp.interfaces: ${name} does not exist`);
  }
  return { links, waiting };
}
