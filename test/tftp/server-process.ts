import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { TftpConfig } from "../../src/tftp/config.ts";
import type { TftpStats } from "../../src/tftp/server.ts";

export type ProcessStats = TftpStats & { events: number; rss: number };

/**
 * Kindling's TFTP server in a child process (test/tftp/run-server.ts) on loopback: tests read its stats
 * and RSS, check it is still alive, and see every log line at warn and above and anything on stderr.
 */
export class ServerProcess {
  /** Log lines at error level or above (pino level >= 50), and stderr output. */
  readonly errors: string[] = [];
  readonly warnings: string[] = [];
  private readonly statsWaiters: ((s: ProcessStats) => void)[] = [];
  private exited = false;

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
  ) {
    child.once("exit", () => (this.exited = true));
  }

  static async start(roots: string[], config: Partial<TftpConfig> = {}): Promise<ServerProcess> {
    const args = JSON.stringify({ config: { host: "127.0.0.1", port: 0, ...config }, roots });
    const child = spawn(process.execPath, ["--import", "tsx", join(import.meta.dirname, "run-server.ts"), args], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    let server: ServerProcess | undefined;
    const stderr: string[] = [];
    child.stderr!.on("data", (d) => (server ? server.errors : stderr).push(String(d)));
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server did not start: ${stderr.join("")}`)), 30_000);
      child.once("exit", (code) => reject(new Error(`server exited (${code}): ${stderr.join("")}`)));
      createInterface({ input: child.stdout! }).on("line", (line) => {
        if (line.startsWith("READY ")) {
          clearTimeout(timer);
          resolve(Number(line.slice(6)));
        } else if (line.startsWith("STATS ")) server?.statsWaiters.shift()?.(JSON.parse(line.slice(6)));
        else if (line.startsWith("{")) {
          const level = (JSON.parse(line) as { level: number }).level;
          (level >= 50 ? server?.errors : server?.warnings)?.push(line);
        } else server?.errors.push(line);
      });
    });
    server = new ServerProcess(child, port);
    server.errors.push(...stderr);
    return server;
  }

  get alive(): boolean {
    return !this.exited;
  }

  stats(waitMs = 10_000): Promise<ProcessStats> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no stats answer")), waitMs);
      this.statsWaiters.push((s) => {
        clearTimeout(timer);
        resolve(s);
      });
      this.child.stdin!.write("stats\n");
    });
  }

  /** Polls until no transfer runs; throws after `waitMs`. Returns the last stats. */
  async idle(waitMs: number): Promise<ProcessStats> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const s = await this.stats();
      if (s.active === 0) return s;
      if (Date.now() > deadline) throw new Error(`still ${s.active} transfers running after ${waitMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /**
   * Closes stdin, which makes the server close (it waits for every transfer to end); SIGKILL after
   * 10 s. Returns the exit code, null if it had to be killed: a leaked transfer shows up here.
   */
  async stop(): Promise<number | null> {
    if (this.exited) return this.child.exitCode;
    const exited = new Promise<number | null>((r) => this.child.once("exit", (code) => r(code)));
    this.child.stdin!.end();
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 10_000);
    const code = await exited;
    clearTimeout(timer);
    return code;
  }
}
