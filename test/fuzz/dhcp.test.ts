/**
 * DHCP fuzzing against real servers in network namespaces (not loopback: broadcasts, the per-link sockets and
 * relayed replies take the paths they take on a real segment). KINDLING_FUZZ_PACKETS (default 200,000) seeded
 * mutations of valid client messages (test/dhcp/mutate.ts) go half to a full-mode server on port 67, half to
 * a proxy-mode server on 67 and 4011, by broadcast and unicast. The seed is KINDLING_FUZZ_SEED or random, and
 * printed. Afterwards busybox udhcpc and the PXE test client get exact answers, nothing was logged at error
 * level, and both servers are still running.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FuzzResult, ReplySummary } from "../dhcp/client.ts";
import {
  clientScripts,
  type Running,
  removeTempDirs,
  runClient,
  runClientAsync,
  startKindling,
  tempDir,
} from "../dhcp/harness.ts";
import { Lab, type Netns } from "../dhcp/netns.ts";

afterAll(removeTempDirs);

const PACKETS = Number(process.env.KINDLING_FUZZ_PACKETS ?? 200_000);
const SEED = Number(process.env.KINDLING_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 32));
// Bounded in time as well as count: 5M packets (npm run fuzz) take a while.
const TIME_LIMIT_MS = Math.max(110_000, PACKETS * 0.6);

interface Side {
  lab: Lab;
  srv: Netns;
  cli: Netns;
  kindling: Running;
  server: string;
  prefix: string;
}

async function side(mode: "full" | "proxy", prefix: string): Promise<Side> {
  const lab = new Lab("kfz");
  const srv = lab.ns("s");
  const cli = lab.ns("c");
  const server = `${prefix}.1`;
  // A /16 whose ranges outlast what the fuzz binds (it names addresses in the first /24 only): afterwards a
  // new client must find a free address.
  lab.link(srv, "k0", `${server}/16`, cli, "eth0", `${prefix}.2/16`);
  // Broadcasts need a route; everything stays on this link.
  cli.ip("route", "add", "default", "dev", "eth0");
  const kindling = await startKindling(lab, srv, {
    config: {
      mode,
      ...(mode === "full"
        ? {
            subnets: [
              {
                cidr: `${prefix}.0/16`,
                ranges: [{ start: `${prefix}.100`, end: `${prefix.replace(/\.0$/, ".255")}.250` }],
                router: server,
                leaseSeconds: 3600,
              },
            ],
          }
        : {}),
    },
    advertise: server,
    dataDir: tempDir(`kindling-fuzz-${mode}-`),
  });
  return { lab, srv, cli, kindling, server, prefix };
}

let full: Side;
let proxy: Side;

beforeAll(async () => {
  [full, proxy] = await Promise.all([side("full", "10.81.0"), side("proxy", "10.82.0")]);
});
afterAll(async () => {
  for (const s of [full, proxy]) {
    await s?.kindling.stop();
    await s?.lab.destroy();
  }
});

/** Log lines at error level or above, and anything else on stdout/stderr that is neither a log line nor run-server's replies. */
const errorLines = (k: Running) =>
  k.output.filter((l) => {
    if (l.startsWith("READY") || l.startsWith("STATS ")) return false;
    try {
      return (JSON.parse(l) as { level: number }).level >= 50;
    } catch {
      return l.trim() !== ""; // anything not a log line (a stack trace on stderr) counts as an error too
    }
  });

describe(`DHCP fuzz: ${PACKETS} packets, seed ${SEED}`, () => {
  it(
    "servers read every packet, log no error, and then answer real clients exactly",
    async () => {
      console.log(`DHCP fuzz: ${PACKETS} packets, seed ${SEED} (replay with KINDLING_FUZZ_SEED=${SEED})`);
      const half = Math.ceil(PACKETS / 2);
      const fuzz = (s: Side, seed: number, targets: unknown[]) =>
        runClientAsync<FuzzResult>(
          s.cli,
          {
            op: "fuzz",
            count: half,
            seed,
            net: { server: s.server, prefix: s.prefix, relay: `${s.prefix}.2` },
            targets,
            batch: 100,
          },
          TIME_LIMIT_MS,
        );
      const [rf, rp] = await Promise.all([
        fuzz(full, SEED, [
          { to: full.server, port: 67, probe: "discover" },
          { to: "255.255.255.255", port: 67, probe: "discover" },
        ]),
        fuzz(proxy, (SEED + 1) >>> 0, [
          { to: proxy.server, port: 67, probe: "pxe-discover" },
          { to: "255.255.255.255", port: 67, probe: "pxe-discover" },
          { to: proxy.server, port: 4011, probe: "pxe-request" },
        ]),
      ]);
      console.log(`full: ${JSON.stringify(rf)}\nproxy: ${JSON.stringify(rp)}`);
      for (const [s, r] of [
        [full, rf],
        [proxy, rp],
      ] as const) {
        expect(r.sent).toBe(half);
        expect(s.kindling.alive()).toBe(true);
        const stats = await s.kindling.stats();
        console.log(`${s.prefix}: ${JSON.stringify({ ...stats, byType: undefined })}`);
        // Every packet and probe reached the server, bar what a stalled moment of this shared machine lost.
        expect(stats.received).toBeGreaterThanOrEqual(0.98 * (r.sent + r.probes + r.missed));
        expect(r.missed).toBeLessThanOrEqual(0.02 * (r.probes + r.missed));
        expect(stats.malformed).toBeGreaterThan(0.1 * r.sent);
        expect(errorLines(s.kindling)).toEqual([]);
      }

      // Full mode: a PXE client gets an address and its boot file.
      const pxeFull = runClient<{ offers: ReplySummary[] }>(full.cli, {
        op: "pxe",
        mac: "02:81:00:00:00:02",
        arch: 7,
        vendorClass: "PXEClient:Arch:00007:UNDI:003016",
        listenMs: 5000,
        expectOffers: 1,
      });
      expect(pxeFull.offers).toHaveLength(1);
      expect(pxeFull.offers[0]).toMatchObject({
        from: full.server,
        type: "OFFER",
        serverId: full.server,
        siaddr: full.server,
        file: "ipxe.efi",
      });
      // Full mode says PXEClient to no one: iPXE would take the offer for a proxy offer.
      expect(pxeFull.offers[0]!.vendorClass).toBeUndefined();
      expect(pxeFull.offers[0]!.yiaddr).toMatch(/^10\.81\.\d+\.\d+$/);

      // Full mode: udhcpc (last: its script reconfigures eth0) gets a lease with exactly the configured options.
      const scripts = clientScripts();
      full.cli.ip("link", "set", "eth0", "address", "02:81:00:00:00:01");
      full.cli.run(["busybox", "udhcpc", "-f", "-q", "-n", "-i", "eth0", "-s", scripts.udhcpc, "-t", "5", "-T", "1"], {
        timeoutMs: 30_000,
      });
      const bound = scripts.lines().find((l) => l.startsWith("udhcpc bound"));
      expect(bound).toMatch(
        /^udhcpc bound ip=10\.81\.\d+\.\d+ siaddr= boot_file= serverid=10\.81\.0\.1 mask=16 router=10\.81\.0\.1 lease=3600$/,
      );

      // Proxy mode: a UEFI PXE client gets the proxy offer on 67, then its file from 4011.
      const pxeProxy = runClient<{ offers: ReplySummary[]; ack?: ReplySummary }>(proxy.cli, {
        op: "pxe",
        mac: "02:82:00:00:00:01",
        arch: 7,
        vendorClass: "PXEClient:Arch:00007:UNDI:003016",
        uuid: "4c4c4544-0051-3510-8052-b4c04f4b4e31",
        listenMs: 5000,
        expectOffers: 1,
        ciaddr: "10.82.0.2",
        request4011: true,
      });
      expect(pxeProxy.offers).toHaveLength(1);
      expect(pxeProxy.offers[0]).toMatchObject({
        type: "OFFER",
        yiaddr: "0.0.0.0",
        siaddr: proxy.server,
        serverId: proxy.server,
        vendorClass: "PXEClient",
        file: "",
        guid: "4c4c4544-0051-3510-8052-b4c04f4b4e31",
      });
      expect(pxeProxy.ack).toMatchObject({
        type: "ACK",
        yiaddr: "0.0.0.0",
        file: "ipxe.efi",
        vendorClass: "PXEClient",
        sub43: { "71": "80000000" },
      });
      for (const s of [full, proxy]) {
        expect(s.kindling.alive()).toBe(true);
        expect(errorLines(s.kindling)).toEqual([]);
      }
    },
    TIME_LIMIT_MS + 60_000,
  );
});
