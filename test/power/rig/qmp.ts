import { type ChildProcess, spawn } from "node:child_process";
import { openSync } from "node:fs";
import { connect } from "node:net";
import type { Chassis, ResetType } from "./redfish-sim.ts";

/** One QMP command over QEMU's monitor socket: greeting, capabilities negotiation, the command, its answer. */
export function qmp(socketPath: string, execute: string, timeoutMs = 10_000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sock = connect(socketPath);
    let buf = "";
    let stage: "greeting" | "capabilities" | "command" = "greeting";
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`QMP ${execute}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const done = (err: Error | null, value?: unknown) => {
      clearTimeout(timer);
      sock.end();
      if (err) reject(err);
      else resolve(value);
    };
    sock.on("error", (e) => done(e));
    sock.on("data", (chunk) => {
      buf += chunk.toString("utf8");
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        const msg = JSON.parse(buf.slice(0, nl)) as { QMP?: unknown; return?: unknown; error?: { desc: string } };
        buf = buf.slice(nl + 1);
        if (stage === "greeting" && msg.QMP) {
          stage = "capabilities";
          sock.write(`${JSON.stringify({ execute: "qmp_capabilities" })}\n`);
        } else if (stage === "capabilities" && "return" in msg) {
          stage = "command";
          sock.write(`${JSON.stringify({ execute })}\n`);
        } else if (stage === "command" && ("return" in msg || msg.error)) {
          done(msg.error ? new Error(`QMP ${execute}: ${msg.error.desc}`) : null, msg.return);
        }
      }
    });
  });
}

/**
 * The machine behind the simulated Redfish BMC: a QEMU process. On starts it, ForceOff ends it (`quit`),
 * GracefulShutdown presses the ACPI button, ForceRestart resets it in place, PowerCycle ends it and starts it
 * again. When the guest powers itself off, QEMU exits and the state is Off.
 */
export class QmpChassis implements Chassis {
  private proc: ChildProcess | undefined;

  constructor(
    private readonly command: string[],
    private readonly socketPath: string,
    private readonly logFile: string,
  ) {}

  powerState(): "On" | "Off" {
    return this.proc && this.proc.exitCode === null && this.proc.signalCode === null ? "On" : "Off";
  }

  async reset(type: ResetType): Promise<void> {
    const on = this.powerState() === "On";
    if (type === "On") {
      if (!on) await this.start();
    } else if (type === "ForceOff") {
      if (on) await this.stop();
    } else if (type === "GracefulShutdown") {
      if (on) await this.command_("system_powerdown");
    } else if (type === "ForceRestart" || type === "GracefulRestart") {
      if (on) await this.command_("system_reset");
      else await this.start();
    } else if (type === "PowerCycle") {
      if (on) await this.stop();
      await this.start();
    }
  }

  private async command_(execute: string): Promise<void> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        await qmp(this.socketPath, execute);
        return;
      } catch (err) {
        // The socket appears a moment after QEMU starts.
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  private async start(): Promise<void> {
    const log = openSync(this.logFile, "a");
    this.proc = spawn(this.command[0]!, this.command.slice(1), { stdio: ["ignore", log, log] });
    await this.command_("query-status");
  }

  private async stop(): Promise<void> {
    const proc = this.proc!;
    const exited = new Promise<void>((r) => (proc.exitCode !== null ? r() : proc.once("exit", () => r())));
    await this.command_("quit").catch(() => proc.kill("SIGKILL"));
    const killer = setTimeout(() => proc.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(killer);
  }
}
