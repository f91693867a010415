/**
 * The storm's network: a server namespace and a client namespace joined by one veth pair, nothing routed
 * anywhere else. The client side holds every address of the DHCP pool, so each simulated machine can send
 * from the address it was leased; the server side has a permanent neighbour entry for each of them (the
 * kernel's neighbour table is shared by all namespaces and holds 1,024 learned entries by default, and a
 * storm of a thousand machines must not fill it for everyone else on the host).
 */
import { spawnSync } from "node:child_process";
import { intToIp, ipToInt } from "../../src/dhcp/ip.ts";
import { Lab, type Netns } from "../../test/dhcp/netns.ts";

export const SERVER_IP = "10.90.0.1";
const CLIENT_IP = "10.90.0.2";
const PREFIX = 16;
export const NETMASK = "255.255.0.0";
export const CIDR = `10.90.0.0/${PREFIX}`;
export const SERVER_IF = "s0";
const CLIENT_IF = "c0";
/**
 * Pool addresses per machine. Twice the fleet, as a site sizes a pool: with barely one address per machine,
 * dnsmasq (which picks an address by hashing the MAC and does not hold offered addresses) offers the last
 * free ones to several machines at once and NAKs all but one of their REQUESTs.
 */
const POOL_PER_MACHINE = 2;

export interface Topology {
  lab: Lab;
  server: Netns;
  client: Netns;
  pool: { start: string; end: string };
  /** Command prefixes placing the server and the fleet on their CPUs (`taskset -c N`), empty when not pinned. */
  serverCpu: string[];
  fleetCpu: string[];
}

/** `ip -n NS -batch -` with one command per line: thousands of addresses in one process. */
function batch(ns: Netns, commands: string[]): void {
  const r = spawnSync("ip", ["-n", ns.name, "-batch", "-"], { input: `${commands.join("\n")}\n`, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`ip -n ${ns.name} -batch failed: ${r.stderr}`);
}

export function createTopology(machines: number, pin: boolean): Topology {
  const lab = new Lab("kst");
  try {
    const server = lab.ns("s");
    const client = lab.ns("c");
    lab.link(server, SERVER_IF, `${SERVER_IP}/${PREFIX}`, client, CLIENT_IF, `${CLIENT_IP}/${PREFIX}`);
    const first = ipToInt("10.90.1.0");
    const count = machines * POOL_PER_MACHINE;
    const pool = { start: intToIp(first), end: intToIp(first + count - 1) };
    const mac = /link\/ether ([0-9a-f:]+)/.exec(client.ip("link", "show", CLIENT_IF))?.[1];
    if (!mac) throw new Error(`no MAC on ${CLIENT_IF} in ${client.name}`);
    const addrs = Array.from({ length: count }, (_, i) => intToIp(first + i));
    batch(
      client,
      addrs.map((a) => `addr add ${a}/32 dev ${CLIENT_IF}`),
    );
    batch(
      server,
      addrs.map((a) => `neigh replace ${a} lladdr ${mac} dev ${SERVER_IF} nud permanent`),
    );
    // Requests go to 255.255.255.255, which needs a route; the only link is the veth.
    client.ip("route", "add", "255.255.255.255/32", "dev", CLIENT_IF);
    return {
      lab,
      server,
      client,
      pool,
      serverCpu: pin ? ["taskset", "-c", "1"] : [],
      fleetCpu: pin ? ["taskset", "-c", "0"] : [],
    };
  } catch (err) {
    void lab.destroy();
    throw err;
  }
}
