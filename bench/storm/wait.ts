import type { ChildProcess } from "node:child_process";
import type { Netns } from "../../test/dhcp/netns.ts";

/** Waits until `url` answers (any status) from inside `ns`, or fails when `child` exits or 60 s pass. */
export async function waitForHttp(ns: Netns, url: string, child: ChildProcess, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${child.spawnargs.join(" ")} exited with ${child.exitCode}`);
    const r = ns.run(["curl", "-s", "-o", "/dev/null", "--max-time", "1", url], { allowFail: true });
    if (r.status === 0) return;
    if (Date.now() > deadline) throw new Error(`nothing answers ${url} in ${ns.name} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Waits until a UDP port is bound inside `ns` (dnsmasq has no HTTP to ask). */
export async function waitForUdp(ns: Netns, port: number, child: ChildProcess, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${child.spawnargs.join(" ")} exited with ${child.exitCode}`);
    const out = ns.run(["ss", "-Hlun", `sport = :${port}`], { allowFail: true }).stdout;
    if (out.trim()) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on UDP ${port} in ${ns.name} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
