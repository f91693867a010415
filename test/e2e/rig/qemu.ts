import type { ChildProcess } from "node:child_process";
import { copyFileSync, createWriteStream, existsSync, type WriteStream } from "node:fs";
import { join } from "node:path";
import type { Netns } from "./netns.ts";

/**
 * A QEMU guest on the namespace's tap device, TCG only (KVM does not work on these hosts), its serial
 * console kept in memory for assertions and written to a file for humans.
 */
export interface VmOptions {
  ns: Netns;
  /**
   * SeaBIOS (QEMU's default); OVMF from Debian's `ovmf`; OVMF's Secure Boot build with Microsoft's keys
   * enrolled (`secboot`: q35 with SMM, Secure Boot enforced); AAVMF from `qemu-efi-aarch64` on
   * `qemu-system-aarch64 -M virt` (arm64, TCG).
   */
  firmware: "seabios" | "ovmf" | "ovmf-secboot" | "aavmf";
  /** e1000 carries QEMU's iPXE ROM from `ipxe-qemu`; virtio is used without ROM so the firmware's own PXE runs. */
  nic: "e1000" | "virtio";
  /** `ipxe`: the NIC's default iPXE option ROM; `none`: no option ROM (firmware's own network stack). */
  rom: "ipxe" | "none";
  /**
   * OVMF's PXE clients: both (default); `ipv4` only; `off`, so UEFI HTTP Boot is the first network boot option.
   * (Nothing answers IPv6 here: an IPv6 attempt only adds its timeout.)
   */
  pxe?: "both" | "ipv4" | "off";
  mac: string;
  /** Directory for the serial log (and the firmware's writable variable store, kept across power-ons). */
  workDir: string;
  /** Name of the serial log in workDir (several power-ons of one machine). */
  logName?: string;
  /** A raw disk image attached as the second boot device. */
  disk?: string;
  memoryMiB?: number;
}

export interface Match {
  match: RegExpMatchArray;
  /** Milliseconds since QEMU was started. */
  atMs: number;
}

/** Code and variable-store template of each UEFI firmware. */
const PFLASH = {
  ovmf: { code: "/usr/share/OVMF/OVMF_CODE_4M.fd", vars: "/usr/share/OVMF/OVMF_VARS_4M.fd" },
  "ovmf-secboot": { code: "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd", vars: "/usr/share/OVMF/OVMF_VARS_4M.ms.fd" },
  aavmf: { code: "/usr/share/AAVMF/AAVMF_CODE.fd", vars: "/usr/share/AAVMF/AAVMF_VARS.fd" },
} as const;

/** The machine part of the command line: x86 `pc`, x86 `q35` with SMM (Secure Boot OVMF needs it), arm64 `virt`. */
function machineArgs(firmware: VmOptions["firmware"]): { qemu: string; args: string[] } {
  if (firmware === "aavmf")
    // cortex-a57: `-cpu max` emulates pointer authentication, which makes TCG several times slower.
    return { qemu: "qemu-system-aarch64", args: ["-machine", "virt,accel=tcg", "-cpu", "cortex-a57"] };
  if (firmware === "ovmf-secboot")
    return {
      qemu: "qemu-system-x86_64",
      args: ["-machine", "q35,smm=on,accel=tcg", "-global", "driver=cfi.pflash01,property=secure,value=on"],
    };
  return { qemu: "qemu-system-x86_64", args: ["-machine", "pc,accel=tcg"] };
}

export class Vm {
  readonly serialLog: string;
  readonly startedAt: number;
  private output = "";
  private readonly proc: ChildProcess;
  private readonly log: WriteStream;
  private exited: { code: number | null; signal: string | null } | null = null;
  private readonly waiters = new Set<() => void>();

  constructor(opts: VmOptions) {
    this.serialLog = join(opts.workDir, opts.logName ?? "serial.log");
    this.log = createWriteStream(this.serialLog);
    const machine = machineArgs(opts.firmware);
    const args = [
      ...machine.args,
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
    if (opts.firmware !== "seabios") {
      const flash = PFLASH[opts.firmware];
      // The machine's NVRAM: made from the template at the first power-on, kept for the next.
      const vars = join(opts.workDir, `${opts.firmware}-vars.fd`);
      if (!existsSync(vars)) copyFileSync(flash.vars, vars);
      args.push(
        "-drive",
        `if=pflash,format=raw,unit=0,readonly=on,file=${flash.code}`,
        "-drive",
        `if=pflash,format=raw,unit=1,file=${vars}`,
      );
    }
    if (opts.pxe === "off") args.push("-fw_cfg", "name=opt/org.tianocore/IPv4PXESupport,string=n");
    if (opts.pxe === "off" || opts.pxe === "ipv4")
      args.push("-fw_cfg", "name=opt/org.tianocore/IPv6PXESupport,string=n");
    this.startedAt = Date.now();
    this.proc = opts.ns.spawn(machine.qemu, args, { stdio: ["pipe", "pipe", "pipe"] });
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
