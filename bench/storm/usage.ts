/**
 * What the servers cost while the storm runs: resident memory sampled every 200 ms (peak of each process and
 * of their sum) and CPU seconds (user + system) between start() and stop(), read from /proc for every process
 * in the server namespace — Kindling with any helper processes it has, or dnsmasq + nginx master + workers.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";

const CLOCK_TICKS = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;
const SAMPLE_MS = 200;
const RELIST_MS = 2000;

export interface Usage {
  /** Highest sum of RSS over the namespace's processes, in bytes. */
  peakRss: number;
  /** Highest RSS of any one process, and which. */
  peakProcessRss: number;
  peakProcess: string;
  cpuSeconds: number;
}

const pidsIn = (ns: string) =>
  spawnSync("ip", ["netns", "pids", ns], { encoding: "utf8" }).stdout.split(/\s+/).filter(Boolean).map(Number);

function rssOf(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0; // exited in between
  }
}

/** utime + stime of the process and its reaped children, in ticks; 0 once it is gone. */
function ticksOf(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  } catch {
    return 0;
  }
}

function nameOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "?";
  }
}

export class UsageSampler {
  private pids: number[] = [];
  private readonly ticksAtStart = new Map<number, number>();
  private readonly lastTicks = new Map<number, number>();
  private timer: NodeJS.Timeout | undefined;
  private lastList = 0;
  private readonly usage: Usage = { peakRss: 0, peakProcessRss: 0, peakProcess: "", cpuSeconds: 0 };

  constructor(private readonly ns: string) {}

  start(): void {
    this.relist();
    this.sample();
    this.timer = setInterval(() => this.sample(), SAMPLE_MS);
  }

  private relist(): void {
    const first = this.lastList === 0;
    this.pids = pidsIn(this.ns);
    // A process that appears later started during the storm: all of its CPU time counts.
    for (const pid of this.pids) if (!this.ticksAtStart.has(pid)) this.ticksAtStart.set(pid, first ? ticksOf(pid) : 0);
    this.lastList = Date.now();
  }

  private sample(): void {
    if (Date.now() - this.lastList > RELIST_MS) this.relist();
    let sum = 0;
    for (const pid of this.pids) {
      const rss = rssOf(pid);
      sum += rss;
      if (rss > this.usage.peakProcessRss) {
        this.usage.peakProcessRss = rss;
        this.usage.peakProcess = nameOf(pid);
      }
      const t = ticksOf(pid);
      if (t > 0) this.lastTicks.set(pid, t);
    }
    this.usage.peakRss = Math.max(this.usage.peakRss, sum);
  }

  /** Call while the servers still run: a process's CPU time can be read only while it exists. */
  stop(): Usage {
    clearInterval(this.timer);
    this.sample();
    let ticks = 0;
    for (const [pid, last] of this.lastTicks) ticks += last - (this.ticksAtStart.get(pid) ?? 0);
    this.usage.cpuSeconds = ticks / CLOCK_TICKS;
    return { ...this.usage };
  }
}
