import { type ChildProcess, execFileSync, type SpawnOptions, spawn } from "node:child_process";

/**
 * One network namespace per scenario: a bridge holding the server's address and a tap device the VM
 * plugs into. Nothing in it is routed anywhere, so no packet the VM or the servers send can leave.
 * Every namespace created here is removed on `destroy()`, and — as a last resort — when this process
 * exits or is interrupted, so a failed or aborted run leaves nothing behind.
 */
export interface NetnsOptions {
  /** Third octet of 10.213.<subnet>.0/24; distinct per scenario only for readable captures. */
  subnet: number;
}

const live = new Set<Netns>();
let hooked = false;

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  const cleanup = () => {
    for (const ns of live) ns.destroy();
  };
  process.on("exit", cleanup);
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(sig, () => {
      cleanup();
      process.kill(process.pid, sig);
    });
  }
}

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

let counter = 0;

export class Netns {
  readonly name: string;
  readonly bridge = "br0";
  readonly tap = "tap0";
  readonly prefix: string;
  /** The server side of the segment (Kindling or the peer servers bind here). */
  readonly serverIp: string;
  /** The interface servers in this namespace serve on: the bridge, or an attached host's veth end. */
  readonly iface: string;
  private readonly children = new Set<ChildProcess>();
  private readonly hosts = new Set<Netns>();
  private destroyed = false;

  private constructor(
    private readonly subnet: number,
    octet: number,
    iface: string,
  ) {
    // pid + counter: unique across parallel vitest workers and across scenarios in one worker.
    this.name = `kdl-e2e-${process.pid}-${counter++}`;
    this.prefix = `10.213.${subnet}`;
    this.serverIp = `${this.prefix}.${octet}`;
    this.iface = iface;
  }

  static create(opts: NetnsOptions): Netns {
    hookExit();
    const ns = new Netns(opts.subnet, 1, "br0");
    live.add(ns);
    try {
      run("ip", ["netns", "add", ns.name]);
      const inNs = (...args: string[]) => run("ip", ["netns", "exec", ns.name, ...args]);
      inNs("ip", "link", "set", "lo", "up");
      inNs("ip", "link", "add", ns.bridge, "type", "bridge", "forward_delay", "0", "stp_state", "0");
      inNs("ip", "addr", "add", `${ns.serverIp}/24`, "dev", ns.bridge);
      inNs("ip", "tuntap", "add", "dev", ns.tap, "mode", "tap");
      inNs("ip", "link", "set", ns.tap, "master", ns.bridge);
      inNs("ip", "link", "set", ns.tap, "up");
      // A tap has no carrier until QEMU opens it, so the bridge would be NO-CARRIER when servers start,
      // and Node (libuv) lists no addresses of a link that is not running. An idle host on another port
      // keeps the bridge up, like a switch with another port lit. Its veth end lives in its own namespace:
      // with both ends here, every flooded broadcast re-entered this namespace's stack through the peer and
      // servers saw each DHCP request twice (and the dummy driver is not available on these hosts).
      inNs("ip", "link", "set", ns.bridge, "up");
      ns.attachHost(254);
      const deadline = Date.now() + 10_000;
      while (!/state UP/.test(inNs("ip", "link", "show", ns.bridge))) {
        if (Date.now() > deadline) throw new Error(`bridge ${ns.bridge} in ${ns.name} did not come up`);
        execFileSync("sleep", ["0.05"]);
      }
    } catch (err) {
      ns.destroy();
      throw err;
    }
    return ns;
  }

  /**
   * Another machine on the segment (the site's own DHCP server, say): a namespace of its own whose `eth0`
   * is plugged into the bridge by a veth pair, at <prefix>.<octet>. Removed with this namespace.
   */
  attachHost(octet: number): Netns {
    const host = new Netns(this.subnet, octet, "eth0");
    live.add(host);
    this.hosts.add(host);
    const port = `host${octet}`;
    try {
      run("ip", ["netns", "add", host.name]);
      run("ip", [
        "netns",
        "exec",
        this.name,
        "ip",
        "link",
        "add",
        port,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        host.name,
      ]);
      run("ip", ["netns", "exec", this.name, "ip", "link", "set", port, "master", this.bridge]);
      run("ip", ["netns", "exec", this.name, "ip", "link", "set", port, "up"]);
      const inHost = (...args: string[]) => run("ip", ["netns", "exec", host.name, ...args]);
      inHost("ip", "link", "set", "lo", "up");
      inHost("ip", "addr", "add", `${host.serverIp}/24`, "dev", "eth0");
      inHost("ip", "link", "set", "eth0", "up");
    } catch (err) {
      host.destroy();
      throw err;
    }
    return host;
  }

  /** Starts `cmd` inside the namespace; the process is killed on destroy(). */
  spawn(cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    if (this.destroyed) throw new Error(`netns ${this.name} is gone`);
    const child = spawn("ip", ["netns", "exec", this.name, cmd, ...args], { stdio: "pipe", ...opts });
    this.children.add(child);
    child.once("exit", () => this.children.delete(child));
    return child;
  }

  /** Runs a short command inside the namespace and returns its stdout. */
  exec(cmd: string, args: string[], input?: string): string {
    return execFileSync("ip", ["netns", "exec", this.name, cmd, ...args], {
      encoding: "utf8",
      input,
      stdio: ["pipe", "pipe", "pipe"],
      timeout: 30_000,
    });
  }

  /** Kills everything started here and removes the namespace (with its bridge and tap). Idempotent. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const host of this.hosts) host.destroy();
    for (const child of this.children) {
      if (child.exitCode === null && child.pid !== undefined) {
        try {
          child.kill("SIGKILL");
        } catch {
          /* already gone */
        }
      }
    }
    // Anything else still inside (a daemon that forked) would keep the namespace's devices alive.
    try {
      const pids = run("ip", ["netns", "pids", this.name]).split(/\s+/).filter(Boolean);
      for (const pid of pids) {
        try {
          process.kill(Number(pid), "SIGKILL");
        } catch {
          /* raced with its exit */
        }
      }
    } catch {
      /* namespace never came up */
    }
    try {
      run("ip", ["netns", "del", this.name]);
    } catch {
      /* never created */
    }
    live.delete(this);
  }
}
