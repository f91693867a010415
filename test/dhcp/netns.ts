/**
 * Network namespaces and veth pairs for DHCP tests. Every name carries a per-process tag so test files
 * running in parallel never collide, and `Lab.destroy()` removes everything (deleting a namespace deletes
 * the veth ends inside it).
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";

let counter = 0;

function sh(cmd: string[], input?: string): string {
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: "utf8", input, timeout: 30_000 });
  if (r.status !== 0) throw new Error(`${cmd.join(" ")} failed (${r.status}): ${r.stderr || r.stdout}`);
  return r.stdout;
}

export class Netns {
  constructor(readonly name: string) {}

  ip(...args: string[]): string {
    return sh(["ip", "-n", this.name, ...args]);
  }

  run(
    cmd: string[],
    opts: { allowFail?: boolean; timeoutMs?: number } = {},
  ): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync("ip", ["netns", "exec", this.name, ...cmd], {
      encoding: "utf8",
      timeout: opts.timeoutMs ?? 60_000,
    });
    if (!opts.allowFail && r.status !== 0)
      throw new Error(`[${this.name}] ${cmd.join(" ")} failed (${r.status}): ${r.stderr}${r.stdout}`);
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  spawn(cmd: string[]): ChildProcess {
    return spawn("ip", ["netns", "exec", this.name, ...cmd], { stdio: ["pipe", "pipe", "pipe"] });
  }
}

/** A set of namespaces joined by veth pairs, torn down as one. */
export class Lab {
  readonly tag: string;
  private readonly namespaces: Netns[] = [];
  private readonly children: ChildProcess[] = [];

  constructor(prefix: string) {
    this.tag = `${prefix}${process.pid % 100000}${counter++}`;
  }

  ns(role: string): Netns {
    const ns = new Netns(`${this.tag}${role}`);
    sh(["ip", "netns", "add", ns.name]);
    this.namespaces.push(ns);
    ns.ip("link", "set", "lo", "up");
    return ns;
  }

  /** Joins `a` and `b` with a veth pair; names are per namespace so they can be short and fixed. */
  link(a: Netns, aIf: string, aAddr: string | undefined, b: Netns, bIf: string, bAddr: string | undefined): void {
    const tmpA = `${this.tag}a${counter}`.slice(-15);
    const tmpB = `${this.tag}b${counter++}`.slice(-15);
    sh(["ip", "link", "add", tmpA, "type", "veth", "peer", "name", tmpB]);
    sh(["ip", "link", "set", tmpA, "netns", a.name]);
    sh(["ip", "link", "set", tmpB, "netns", b.name]);
    a.ip("link", "set", tmpA, "name", aIf);
    b.ip("link", "set", tmpB, "name", bIf);
    if (aAddr) a.ip("addr", "add", aAddr, "dev", aIf);
    if (bAddr) b.ip("addr", "add", bAddr, "dev", bIf);
    a.ip("link", "set", aIf, "up");
    b.ip("link", "set", bIf, "up");
  }

  /** Tracks a process started in the lab so destroy() ends it. */
  adopt<T extends ChildProcess>(child: T): T {
    this.children.push(child);
    return child;
  }

  async destroy(): Promise<void> {
    for (const c of this.children) {
      if (c.exitCode === null && c.signalCode === null) {
        c.kill("SIGKILL");
        await new Promise((r) => c.once("exit", r));
      }
    }
    for (const ns of this.namespaces) {
      // Kill anything still running in the namespace (dhclient daemons) before deleting it.
      const pids = spawnSync("ip", ["netns", "pids", ns.name], { encoding: "utf8" })
        .stdout.split(/\s+/)
        .filter(Boolean);
      for (const pid of pids) spawnSync("kill", ["-9", pid]);
      spawnSync("ip", ["netns", "del", ns.name]);
    }
  }
}
