import type { ChildProcess } from "node:child_process";
import { copyFileSync, createWriteStream, type WriteStream } from "node:fs";
import { join } from "node:path";
import type { Netns } from "./netns.ts";

/**
 * A QEMU guest on the namespace's tap device, TCG only (KVM does not work on these hosts), its serial
 * console kept in memory for assertions and written to a file for humans.
 */
export interface VmOptions {
  ns: Netns;
  /** SeaBIOS (QEMU's default) or OVMF from Debian's `ovmf`. */
  firmware: "seabios" | "ovmf";
  /** e1000 carries QEMU's iPXE ROM from `ipxe-qemu`; virtio is used without ROM so OVMF's own PXE runs. */
  nic: "e1000" | "virtio";
  /** `ipxe`: the NIC's default iPXE option ROM; `none`: no option ROM (firmware's own network stack). */
  rom: "ipxe" | "none";
  mac: string;
  /** Directory for the serial log (and OVMF's writable variable store). */
  workDir: string;
  /** A raw disk image attached as the second boot device. */
  disk?: string;
  memoryMiB?: number;
}

export interface Match {
  match: RegExpMatchArray;
  /** Milliseconds since QEMU was started. */
  atMs: number;
}

const OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd";
const OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd";

export class Vm {
  readonly serialLog: string;
  readonly startedAt: number;
  private output = "";
  private readonly proc: ChildProcess;
  private readonly log: WriteStream;
  private exited: { code: number | null; signal: string | null } | null = null;
  private readonly waiters = new Set<() => void>();

  constructor(opts: VmOptions) {
    this.serialLog = join(opts.workDir, "serial.log");
    this.log = createWriteStream(this.serialLog);
    const args = [
      "-machine",
      "pc,accel=tcg",
      "-m",
      String(opts.memoryMiB ?? 512),
      "-smp",
      "1",
      "-nographic",
      "-serial",
      "stdio",
      "-monitor",
      "none",
      "-no-reboot",
      "-netdev",
      `tap,id=n0,ifname=${opts.ns.tap},script=no,downscript=no`,
    ];
    const model = opts.nic === "e1000" ? "e1000" : "virtio-net-pci";
    const rom = opts.rom === "none" ? ",romfile=" : "";
    args.push("-device", `${model},netdev=n0,mac=${opts.mac}${rom},bootindex=1`);
    if (opts.disk) {
      args.push("-drive", `file=${opts.disk},format=raw,if=none,id=d0`, "-device", "ide-hd,drive=d0,bootindex=2");
    }
    if (opts.firmware === "ovmf") {
      const vars = join(opts.workDir, "OVMF_VARS.fd");
      copyFileSync(OVMF_VARS, vars);
      args.push(
        "-drive",
        `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`,
        "-drive",
        `if=pflash,format=raw,unit=1,file=${vars}`,
      );
    }
    this.startedAt = Date.now();
    this.proc = opts.ns.spawn("qemu-system-x86_64", args, { stdio: ["pipe", "pipe", "pipe"] });
    const onData = (chunk: Buffer) => {
      const text = chunk.toString("latin1");
      this.output += text;
      this.log.write(chunk);
      for (const w of this.waiters) w();
    };
    this.proc.stdout!.on("data", onData);
    this.proc.stderr!.on("data", onData);
    this.proc.once("exit", (code, signal) => {
      this.exited = { code, signal };
      for (const w of this.waiters) w();
    });
    // After the pipes drain, not on stop(): output may still be in flight when QEMU is killed.
    this.proc.once("close", () => this.log.end());
  }

  /** Everything the guest printed so far (serial console and QEMU's own messages). */
  get serial(): string {
    return this.output;
  }

  /**
   * Resolves when `pattern` appears in the serial output after `from` (a character offset), rejects
   * after `timeoutMs` or when QEMU exits first.
   */
  waitFor(pattern: RegExp, timeoutMs: number, from = 0): Promise<Match> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = this.output.slice(from).match(pattern);
        if (m) return done(() => resolve({ match: m, atMs: Date.now() - this.startedAt }));
        if (this.exited)
          done(() => reject(new Error(`QEMU exited (${this.exited?.code ?? this.exited?.signal}) before ${pattern}`)));
      };
      const timer = setTimeout(
        () => done(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${pattern}`))),
        timeoutMs,
      );
      const done = (f: () => void) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        f();
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Resolves when QEMU exits (the guest powered off), rejects after `timeoutMs`. */
  waitExit(timeoutMs: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!this.exited) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(Date.now() - this.startedAt);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`QEMU still running after ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  /** Types on the serial console (SeaBIOS's serial console turns it into keystrokes). */
  type(text: string): void {
    this.proc.stdin!.write(text);
  }

  stop(): void {
    if (!this.exited) this.proc.kill("SIGKILL");
  }
}
