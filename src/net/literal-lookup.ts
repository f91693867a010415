/**
 * Address resolution for node:dgram sockets that answers IP literals at once. The default resolver
 * (dns.lookup) answers even a literal on the next tick: a closure, a tick and their allocations for every
 * datagram sent. DHCP and TFTP only ever send to literals, so on their hot paths that is pure overhead.
 */

import type { SocketOptions } from "node:dgram";
import { lookup as dnsLookup } from "node:dns";
import { isIP } from "node:net";

export const literalLookup: NonNullable<SocketOptions["lookup"]> = (hostname, options, callback) => {
  const family = isIP(hostname);
  if (family !== 0) return callback(null, hostname, family);
  dnsLookup(hostname, options, callback);
};
