/**
 * Hostile DHCP traffic against Kindling (`kindling serve`, full mode) and dnsmasq side by side, each in fresh
 * network namespaces with the same /24 pool of 150 addresses: for each attack, the attacker (test/dhcp/client.ts
 * `flood`, on the client's own link) starts, and busybox udhcpc with a new MAC asks for a lease ATTEMPTS times
 * during the attack, each attempt bounded by 3 DISCOVERs 1 s apart. Prints one Markdown row per attack:
 *
 *   | attack | Kindling ok | peer ok | Kindling p50 ms | peer p50 ms | ratio |
 *
 * `ok` is leases obtained out of ATTEMPTS; p50 is the median wall-clock time of the successful attempts (DISCOVER
 * to lease, udhcpc start-up included); ratio is peer p50 / Kindling p50 (above 1: Kindling answered faster).
 * `--header` prints the header row first. Progress and each server's CPU time during the attack go to stderr,
 * with, first, the CPU one 64 KiB datagram costs Kindling's decoder (process.cpuUsage over DECODES of them).
 * dnsmasq runs as bench/dhcp.sh runs it (`--no-ping`: Kindling does not probe either). Root only.
 *
 * Usage: tsx bench/hostile-dhcp.ts [--header] [--only=TEXT] [attempts per attack (default 20)]
 */
import { type ChildProcess, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { decodePacket } from "../src/dhcp/packet.ts";
import type { FloodScenario } from "../test/dhcp/client.ts";
import { until } from "../test/dhcp/harness.ts";
import { Lab, type Netns } from "../test/dhcp/netns.ts";
import { serve, udhcpcOnce } from "../test/dhcp/serve.ts";

const args = process.argv.slice(2);
const HEADER = args.includes("--header");
const ATTEMPTS = Number(args.find((a) => /^\d+$/.test(a)) ?? 20);
const ONLY = args.find((a) => a.startsWith("--only="))?.slice(7);
const ROOT = resolve(import.meta.dirname, "..");
const TSX = join(ROOT, "node_modules/.bin/tsx");
const SERVER = "10.84.0.1";
const CLIENT = "10.84.0.2";
const RANGE: [number, number] = [100, 249];
const DECODES = 2000;
// The whole run stops here whatever happens: 3 attacks x 2 servers x (start-up + 20 attempts of at most ~3.5 s).
const deadline = setTimeout(() => {
  process.stderr.write("hostile-dhcp: deadline reached, stopping\n");
  process.exit(2);
}, 15 * 60_000);

type Flood = Omit<FloodScenario, "op" | "server" | "self" | "prefix" | "hosts" | "seed" | "seconds">;
interface Attack {
  name: string;
  floods: Flood[];
}

const ATTACKS: Attack[] = [
  {
    name: "DHCP: 64 KiB datagrams of one option repeated 21,800 times, 200/s",
    floods: [{ kind: "oversized", rate: 200 }],
  },
  {
    name: "DHCP: spoofed DECLINEs 8,000/s (64,000) + lease-then-DECLINE 100/s",
    floods: [
      { kind: "spoofed-decline", rate: 8000, count: 64_000 },
      { kind: "lease-decline", rate: 100 },
    ],
  },
  { name: "DHCP: DISCOVERs from made-up MACs, 2,000/s", floods: [{ kind: "discover", rate: 2000 }] },
];

interface Peer {
  name: string;
  start(lab: Lab, ns: Netns, dir: string): Promise<() => Promise<void>>;
}

const PEERS: Peer[] = [
  {
    name: "Kindling",
    async start(lab, ns) {
      const k = await serve(lab, ns, SERVER, {
        mode: "full",
        subnets: [
          {
            cidr: "10.84.0.0/24",
            ranges: [{ start: `10.84.0.${RANGE[0]}`, end: `10.84.0.${RANGE[1]}` }],
            router: SERVER,
          },
        ],
      });
      return () => k.stop();
    },
  },
  {
    name: "dnsmasq",
    async start(lab, ns, dir) {
      const leases = join(dir, "dnsmasq.leases");
      writeFileSync(leases, "");
      const p = lab.adopt(
        ns.spawn([
          "dnsmasq",
          "--keep-in-foreground",
          "--conf-file=/dev/null",
          "--port=0",
          "--interface=k0",
          "--bind-interfaces",
          "--no-ping",
          `--dhcp-range=10.84.0.${RANGE[0]},10.84.0.${RANGE[1]},255.255.255.0,1h`,
          `--dhcp-option=3,${SERVER}`,
          `--dhcp-leasefile=${leases}`,
          "--pid-file=",
          "--user=root",
        ]),
      );
      await until("dnsmasq listening", () => ns.run(["ss", "-ulnp"], { allowFail: true }).stdout.includes("dnsmasq"));
      return async () => {
        p.kill("SIGTERM");
        await new Promise((r) => p.once("exit", r));
      };
    },
  },
];

const CLOCK_TICKS = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;
/** CPU ms (user + system) used so far by the processes in `ns`: the server and nothing else. */
function cpuMs(ns: Netns): number {
  let ticks = 0;
  for (const pid of spawnSync("ip", ["netns", "pids", ns.name], { encoding: "utf8" }).stdout.split(/\s+/)) {
    if (!pid) continue;
    try {
      const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // exited in between
    }
  }
  return (ticks * 1000) / CLOCK_TICKS;
}

const median = (xs: number[]) => {
  if (!xs.length) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
};

async function measure(attack: Attack, peer: Peer): Promise<{ ok: number; p50?: number }> {
  const lab = new Lab("kbh");
  const dir = mkdtempSync(join(tmpdir(), "kindling-hostile-"));
  const floods: ChildProcess[] = [];
  try {
    const srv = lab.ns("s");
    const cli = lab.ns("c");
    lab.link(srv, "k0", `${SERVER}/24`, cli, "eth0", `${CLIENT}/24`);
    cli.ip("route", "add", "default", "dev", "eth0");
    const stop = await peer.start(lab, srv, dir);
    const cpu0 = cpuMs(srv);
    for (const f of attack.floods) {
      const s = {
        op: "flood",
        server: SERVER,
        self: CLIENT,
        prefix: "10.84.0",
        hosts: RANGE,
        seed: 13,
        seconds: 300,
        ...f,
      };
      floods.push(lab.adopt(cli.spawn([TSX, join(ROOT, "test/dhcp/client.ts"), JSON.stringify(s)])));
    }
    await new Promise((r) => setTimeout(r, 1500));
    const times: number[] = [];
    for (let i = 0; i < ATTEMPTS; i++) {
      const r = udhcpcOnce(cli);
      if (r.ok) times.push(r.ms);
    }
    const cpu = cpuMs(srv) - cpu0;
    for (const f of floods) f.kill("SIGKILL");
    process.stderr.write(
      `${attack.name}: ${peer.name} ${times.length}/${ATTEMPTS}, p50 ${median(times)?.toFixed(0) ?? "-"} ms, server CPU ${cpu.toFixed(0)} ms during the attack\n`,
    );
    await stop();
    return { ok: times.length, p50: median(times) };
  } finally {
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** CPU per 64 KiB datagram of option 53 repeated, in Kindling's decoder (refused before any option is read). */
function decodeCost(): number {
  const b = Buffer.alloc(65_507);
  b.set([1, 1, 6], 0);
  b.writeUInt32BE(0x63825363, 236);
  for (let i = 240; i + 3 < b.length; i += 3) b.set([53, 1, 1], i);
  const t = process.cpuUsage();
  for (let i = 0; i < DECODES; i++) decodePacket(b);
  const u = process.cpuUsage(t);
  return (u.user + u.system) / 1000 / DECODES;
}

try {
  process.stderr.write(`decoder: ${decodeCost().toFixed(4)} ms CPU per 64 KiB datagram (${DECODES} decoded)\n`);
  if (HEADER) {
    console.log("| attack | Kindling ok | peer ok | Kindling p50 ms | peer p50 ms | ratio |");
    console.log("| --- | --- | --- | --- | --- | --- |");
  }
  for (const attack of ATTACKS.filter((a) => !ONLY || a.name.includes(ONLY))) {
    const [k, p] = [await measure(attack, PEERS[0]!), await measure(attack, PEERS[1]!)];
    const ms = (v?: number) => (v === undefined ? "-" : v.toFixed(0));
    const ratio = k.p50 && p.p50 ? (p.p50 / k.p50).toFixed(2) : "-";
    console.log(
      `| ${attack.name} | ${k.ok}/${ATTEMPTS} | ${p.ok}/${ATTEMPTS} | ${ms(k.p50)} | ${ms(p.p50)} | ${ratio} |`,
    );
  }
} finally {
  clearTimeout(deadline);
}
