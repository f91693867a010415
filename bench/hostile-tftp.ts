/**
 * Hostile TFTP traffic against Kindling and tftpd-hpa side by side, on loopback: for each attack, a fresh
 * server of each kind is attacked in turn, and a legitimate client (curl, asking tsize and blksize as PXE
 * ROMs do) fetches a 256 KiB file FETCHES times during the attack, each fetch bounded by 5 s. Prints one
 * Markdown row per attack on stdout:
 *
 *   | attack | Kindling ok | peer ok | Kindling p50 ms | peer p50 ms | ratio |
 *
 * `ok` is successful exact fetches out of FETCHES; p50 is the median wall-clock time of the successful
 * ones, client start-up included; ratio is peer p50 / Kindling p50 (above 1: Kindling answered faster).
 * `--header` prints the header row first. Progress goes to stderr. Both servers run their defaults
 * (Kindling: bench/tftp-server.ts; tftpd-hpa 5.2 as bench/tftp.sh runs it). Attackers are sockets in
 * this process on other loopback addresses (all of 127.0.0.0/8 is local); the client sends from 127.0.0.1.
 * Bounded: at most 2,000 attacking sockets, 1,000 garbage packets a second, and a deadline per run.
 *
 * Usage: tsx bench/hostile-tftp.ts [--header] [--only=TEXT] [fetches per attack (default 10)]
 * (`--only`: the attacks whose name contains TEXT; run as root: tftpd-hpa chroots.)
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { Flood, hostAddresses, readRequest } from "../test/tftp/flood.ts";

const args = process.argv.slice(2);
const HEADER = args.includes("--header");
const FETCHES = Number(args.find((a) => /^\d+$/.test(a)) ?? 10);
const ONLY = args.find((a) => a.startsWith("--only="))?.slice(7);
const FETCH_TIMEOUT_S = 5;
const ASK = { timeout: "255", tsize: "0", blksize: "1468" };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Target {
  port: number;
  stop(): Promise<void>;
}

/** Kindling's TFTP server with its defaults, in its own process. */
async function kindling(root: string): Promise<Target> {
  const child = spawn(process.execPath, ["--import", "tsx", join(import.meta.dirname, "tftp-server.ts"), "0", root], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`Kindling exited (${code})`)));
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const m = /^listening .*:(\d+)$/.exec(line);
      if (m) resolve(Number(m[1]));
    });
  });
  return { port, stop: () => stopChild(child, "SIGTERM") };
}

/** tftpd-hpa in the foreground in its own process group: it forks one child per request, ended with it. */
async function tftpdHpa(root: string): Promise<Target> {
  const port = await freeUdpPort();
  const child = spawn("/usr/sbin/in.tftpd", ["-L", "-a", `127.0.0.1:${port}`, "-s", root], {
    stdio: "ignore",
    detached: true,
  });
  await sleep(200);
  if (child.exitCode !== null) throw new Error(`in.tftpd exited (${child.exitCode})`);
  return {
    port,
    stop: async () => {
      // The whole group: the daemon and every child it forked for the attacker's requests.
      const exited = new Promise((r) => child.once("exit", r));
      process.kill(-child.pid!, "SIGKILL");
      await exited;
    },
  };
}

async function stopChild(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill(signal);
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

function freeUdpPort(): Promise<number> {
  const s = createSocket("udp4");
  return new Promise((resolve) =>
    s.bind(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    }),
  );
}

/** One curl fetch: wall-clock ms if the bytes arrived exactly, else undefined. */
function fetchOnce(port: number, out: string, want: Buffer): Promise<number | undefined> {
  const start = performance.now();
  return new Promise((resolve) => {
    execFile(
      "curl",
      ["-sS", "--max-time", String(FETCH_TIMEOUT_S), "-o", out, `tftp://127.0.0.1:${port}/ipxe.bin`],
      { timeout: (FETCH_TIMEOUT_S + 1) * 1000 },
      async (err) => {
        const ms = performance.now() - start;
        const got = err ? undefined : await readFile(out).catch(() => undefined);
        await rm(out, { force: true });
        resolve(got?.equals(want) ? ms : undefined);
      },
    );
  });
}

interface Attack {
  name: string;
  /** Starts the attack on `port`; returns what ends it. */
  start(port: number): Promise<() => void>;
  /** The client waits this long after the attack started, e.g. for the attacker to go quiet. */
  settleMs: number;
}

/** `hosts` × `perHost` sockets each send one read request (repeated while unanswered), then stay silent. */
function silentRequests(name: string, hosts: string[], perHost: number, settleMs: number): Attack {
  return {
    name,
    settleMs,
    async start(port) {
      const flood = await Flood.open(hosts, perHost);
      await flood.sendAll(readRequest("ipxe.bin", ASK), port, { repeats: 2 });
      return () => flood.close();
    },
  };
}

const ATTACKS: Attack[] = [
  silentRequests("2,000 silent RRQs (timeout=255) from one other host", ["127.0.0.2"], 2000, 1000),
  silentRequests("2,000 silent RRQs (timeout=255) from 250 other hosts", hostAddresses(250), 8, 1000),
  // The client comes from the attacker's own address, one retransmission timeout after it went quiet.
  silentRequests("2,000 silent RRQs (timeout=255) from the client's own address", ["127.0.0.1"], 2000, 1000),
  {
    name: "garbage flood, 1,000 packets/s from one other host",
    settleMs: 500,
    async start(port) {
      const s = createSocket("udp4");
      await new Promise<void>((r) => s.bind(0, "127.0.0.2", r));
      s.on("error", () => {});
      let n = 0;
      const timer = setInterval(() => {
        for (let i = 0; i < 10; i++) {
          const junk = Buffer.alloc(4 + (n++ % 64), n & 0xff);
          junk.writeUInt16BE(n % 3 === 0 ? 9 : 4, 0);
          s.send(junk, port, "127.0.0.1");
        }
      }, 10);
      return () => {
        clearInterval(timer);
        s.close();
      };
    },
  },
];

async function measure(attack: Attack, target: Target, out: string, want: Buffer) {
  const stop = await attack.start(target.port);
  try {
    await sleep(attack.settleMs);
    const times: number[] = [];
    for (let i = 0; i < FETCHES; i++) {
      const ms = await fetchOnce(target.port, out, want);
      if (ms !== undefined) times.push(ms);
    }
    times.sort((a, b) => a - b);
    return { ok: times.length, p50: times.length ? times[Math.floor((times.length - 1) / 2)]! : undefined };
  } finally {
    stop();
  }
}

const work = await mkdtemp(join(tmpdir(), "kindling-bench-hostile-tftp-"));
const deadline = setTimeout(
  () => {
    console.error("bench/hostile-tftp.ts: deadline passed, giving up");
    process.exit(1);
  },
  ATTACKS.length * 2 * (FETCHES * (FETCH_TIMEOUT_S + 1) + 30) * 1000,
);
try {
  // tftpd-hpa drops to the tftp user and chroots into the directory: it must be world-readable.
  const root = join(work, "root");
  await mkdir(root);
  await chmod(work, 0o755);
  await chmod(root, 0o755);
  const want = Buffer.from(Array.from({ length: 256 * 1024 + 11 }, (_, i) => (i * 131 + (i >> 9)) & 0xff));
  await writeFile(join(root, "ipxe.bin"), want, { mode: 0o644 });
  if (HEADER) {
    console.log("| attack | Kindling ok | peer ok | Kindling p50 ms | peer p50 ms | ratio |");
    console.log("| --- | --- | --- | --- | --- | --- |");
  }
  for (const attack of ATTACKS.filter((a) => !ONLY || a.name.includes(ONLY))) {
    const results = [];
    for (const [name, start] of [
      ["Kindling", kindling],
      ["tftpd-hpa", tftpdHpa],
    ] as const) {
      const target = await start(root);
      try {
        const r = await measure(attack, target, join(work, "out"), want);
        console.error(`${attack.name}: ${name} ${r.ok}/${FETCHES}, p50 ${r.p50?.toFixed(1) ?? "-"} ms`);
        results.push(r);
      } finally {
        await target.stop();
      }
    }
    const [k, p] = results as [{ ok: number; p50?: number }, { ok: number; p50?: number }];
    const ms = (v?: number) => (v === undefined ? "-" : v.toFixed(1));
    const ratio = k.p50 && p.p50 ? (p.p50 / k.p50).toFixed(2) : "-";
    console.log(
      `| ${attack.name} | ${k.ok}/${FETCHES} | ${p.ok}/${FETCHES} | ${ms(k.p50)} | ${ms(p.p50)} | ${ratio} |`,
    );
  }
} finally {
  clearTimeout(deadline);
  await rm(work, { recursive: true, force: true });
}
