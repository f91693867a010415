import { spawn } from "node:child_process";
import type { BootMode, PowerState } from "../model/power.ts";
import { type BmcCall, BmcError, type PowerChange, type PowerDriver } from "./driver.ts";

/** Largest ipmitool output kept (its answers are a line or two; a runaway is cut, not buffered). */
const MAX_OUTPUT = 16 * 1024;

const CHASSIS: Record<PowerChange, string> = {
  on: "on",
  off: "off",
  "soft-off": "soft",
  cycle: "cycle",
  reset: "reset",
};

/**
 * IPMI v2 (RMCP+, `lanplus`) through Debian's `ipmitool`, spawned without a shell. The password reaches it in
 * the environment (`-E` reads IPMI_PASSWORD), never on the command line `ps` shows. ipmitool's own retry
 * budget is set inside the call's deadline, and the process is killed at the deadline regardless.
 */
export class IpmiDriver implements PowerDriver {
  constructor(private readonly bin = "ipmitool") {}

  async status(call: BmcCall): Promise<{ state: PowerState; answer: string }> {
    const answer = await this.run(call, ["chassis", "power", "status"]);
    const m = /Chassis Power is (on|off)/i.exec(answer);
    if (!m) throw new BmcError(`unexpected ipmitool answer: ${answer}`, "protocol");
    return { state: m[1]!.toLowerCase() as PowerState, answer };
  }

  power(call: BmcCall, change: PowerChange): Promise<string> {
    return this.run(call, ["chassis", "power", CHASSIS[change]]);
  }

  /** `chassis bootdev pxe` sets the next boot only (no `persistent`); `efiboot` asks for the UEFI PXE path. */
  pxeOnce(call: BmcCall, mode: BootMode | undefined): Promise<string> {
    return this.run(call, ["chassis", "bootdev", "pxe", ...(mode === "uefi" ? ["options=efiboot"] : [])]);
  }

  private run(call: BmcCall, command: string[]): Promise<string> {
    const { bmc } = call;
    // -N/-R: one try as long as the deadline, so a silent BMC always ends in the deadline's clear message (the
    // process is killed then) rather than in whichever of ipmitool's retry stages happened to run out first.
    const perTry = Math.max(1, Math.ceil(call.timeoutMs / 1000));
    const args = [
      "-I",
      "lanplus",
      "-H",
      bmc.address,
      "-p",
      String(bmc.port),
      ...(bmc.cipherSuite !== undefined ? ["-C", String(bmc.cipherSuite)] : []),
      "-U",
      bmc.username,
      "-E",
      // -v: ipmitool then says why a session failed (bad password, unknown user, no answer) instead of one line.
      "-v",
      "-N",
      String(perTry),
      "-R",
      "1",
      ...command,
    ];
    return new Promise((resolve, reject) => {
      if (call.signal.aborted) return reject(timeoutError(call));
      const child = spawn(this.bin, args, {
        shell: false,
        stdio: ["ignore", "pipe", "pipe"],
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", IPMI_PASSWORD: call.password },
      });
      let out = "";
      let err = "";
      const keep = (prev: string, chunk: Buffer) => (prev.length < MAX_OUTPUT ? prev + chunk.toString("utf8") : prev);
      child.stdout.on("data", (c: Buffer) => (out = keep(out, c)));
      child.stderr.on("data", (c: Buffer) => (err = keep(err, c)));
      const onAbort = () => child.kill("SIGKILL");
      call.signal.addEventListener("abort", onAbort, { once: true });
      child.once("error", (e) => {
        call.signal.removeEventListener("abort", onAbort);
        reject(new BmcError(`cannot run ${this.bin}: ${e.message}`, "unsupported"));
      });
      child.once("close", (code) => {
        call.signal.removeEventListener("abort", onAbort);
        if (call.signal.aborted) return reject(timeoutError(call));
        const text = `${out}\n${err}`.slice(0, 4000);
        // ipmitool exits 0 when a `chassis bootdev` parameter is refused; its "failed" lines say so (a refused
        // boot-info acknowledgement alone is harmless: the boot device line then says it was set).
        const refused = /Set Boot Device to/.test(out) ? [] : err.split("\n").filter((l) => /\bfailed\b/i.test(l));
        if (code === 0 && refused.length === 0)
          return resolve(
            `${out.trim()}${
              err.includes("failed")
                ? ` (${err
                    .trim()
                    .split("\n")
                    .filter((l) => /failed/.test(l))
                    .join("; ")})`
                : ""
            }`,
          );
        if (code === 0) return reject(new BmcError(`ipmitool: ${refused.join("; ").slice(0, 500)}`, "refused"));
        reject(classify(err.trim() || out.trim() || `ipmitool exited with ${code}`, text));
      });
    });
  }
}

const timeoutError = (call: BmcCall) =>
  new BmcError(
    `no answer from IPMI BMC ${call.bmc.address}:${call.bmc.port} within ${call.timeoutMs / 1000} s`,
    "timeout",
  );

function classify(message: string, text: string): BmcError {
  const lines = message
    .split("\n")
    .filter((l) => /error|invalid|unable|fail|unauthori[sz]ed|no response|insufficient/i.test(l));
  const line = (lines.length ? lines : message.split("\n").filter(Boolean)).slice(-3).join("; ").slice(0, 500);
  if (/RAKP \d HMAC is invalid|unauthori[sz]ed name|invalid (user|password)|insufficient privilege/i.test(text))
    return new BmcError(`ipmitool: authentication refused (${line})`, "auth");
  if (/Get Auth Capabilities error|no response|Unable to establish|timeout/i.test(text))
    return new BmcError(`ipmitool: no session with the BMC (${line})`, "unreachable");
  return new BmcError(`ipmitool: ${line}`, "refused");
}
