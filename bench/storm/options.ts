/** bench/storm.sh's flags (`--name=value`), validated; a bad one stops the run naming the flag. */
import { z } from "zod";

const MB = 1_000_000;

export const OptionsSchema = z.strictObject({
  /** Simulated machines (distinct MACs), half BIOS, half UEFI. */
  machines: z.coerce.number().int().min(1).max(4000).default(1000),
  /** Power-on times are spread uniformly over this many seconds. */
  window: z.coerce.number().min(0).max(3600).default(60),
  /** Kernel and initrd sizes in MB (10^6 bytes); the defaults are a Flatcar PXE release's order of size. */
  kernelMb: z.coerce.number().positive().max(4000).default(50),
  initrdMb: z.coerce.number().positive().max(4000).default(300),
  /** Which servers, in the order of the first round (rounds alternate the order). */
  only: z
    .string()
    .default("peer,kindling")
    .transform((s) => s.split(","))
    .pipe(z.array(z.enum(["kindling", "peer"])).min(1)),
  rounds: z.coerce.number().int().min(1).max(10).default(1),
  /** Machines still booting this long after the storm's start count as failed (the run's bound in time). */
  maxSeconds: z.coerce
    .number()
    .int()
    .min(10)
    .max(24 * 3600)
    .default(3600),
  /** nginx worker processes (Kindling is one process; the issue's measurements used one worker). */
  nginxWorkers: z.coerce.number().int().min(1).max(64).default(1),
  /** dnsmasq's concurrent TFTP transfers; 0 = one per machine. dnsmasq's own default, 50, stalls a storm. */
  tftpMax: z.coerce.number().int().min(0).max(100_000).default(0),
  seed: z.coerce.number().int().default(1),
  /**
   * Pin the fleet to CPU 0 and the server under test to CPU 1 (as bench/dhcp.sh does), so the load generator
   * and the server do not trade cores with each other from run to run. `--pin=false` lets the scheduler place them.
   */
  pin: z
    .enum(["true", "false"])
    .default("true")
    .transform((v) => v === "true"),
  /** Run Kindling under V8's CPU profiler and print where its CPU time went. */
  cpuProf: z
    .enum(["true", "false"])
    .default("false")
    .transform((v) => v === "true"),
  /** Keep the work directory (configs, logs, results) instead of removing it. */
  keep: z
    .enum(["true", "false"])
    .default("false")
    .transform((v) => v === "true"),
});
export type Options = z.infer<typeof OptionsSchema>;

export const bytesOf = (mb: number) => Math.round(mb * MB);

/** `--kernel-mb=5 --keep` → { kernelMb: "5", keep: "true" }, then validated. */
export function parseOptions(argv: string[]): Options {
  const raw: Record<string, string> = {};
  for (const a of argv) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(a);
    if (!m) throw new Error(`unexpected argument ${a}; flags look like --machines=100`);
    raw[m[1]!.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())] = m[2] ?? "true";
  }
  const r = OptionsSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0]!;
    const flag = String(i.path[0] ?? "").replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    throw new Error(`--${flag}: ${i.message}`);
  }
  return r.data;
}
