/**
 * What the orchestrator (bench/storm-run.ts) hands the fleet process, and what the fleet writes back. The
 * fleet runs inside the client namespace; the two talk through a JSON file each way.
 */
import { z } from "zod";

export const FirmwareSchema = z.enum(["bios", "uefi"]);
export type Firmware = z.infer<typeof FirmwareSchema>;

export const MachineSpecSchema = z.strictObject({
  mac: z.string(),
  uuid: z.string(),
  firmware: FirmwareSchema,
  /** When this machine powers on, in ms after the storm's start. */
  arrivalMs: z.number().min(0),
});
export type MachineSpec = z.infer<typeof MachineSpecSchema>;

export const FleetPlanSchema = z.strictObject({
  /** The server's address: DHCP replies must come from it, and the Kindling API is reached there. */
  server: z.ipv4(),
  machines: z.array(MachineSpecSchema).min(1),
  /** Expected sizes of the kernel and initrd; a download of any other length is a failure. */
  kernelBytes: z.number().int().min(1),
  initrdBytes: z.number().int().min(1),
  /** Register every machine with this profile through the API before the clock starts (Kindling only). */
  register: z.strictObject({ url: z.url(), token: z.string(), profile: z.string() }).optional(),
  /** Machines still running this long after the start are stopped and counted as failed. */
  deadlineMs: z.number().int().min(1000),
  resultFile: z.string(),
});
export type FleetPlan = z.infer<typeof FleetPlanSchema>;

/** Steps of the boot conversation, in order. */
export const STAGES = [
  "dhcp-firmware",
  "tftp",
  "dhcp-ipxe",
  "boot.ipxe",
  "ipxe",
  "kernel",
  "initrd",
  "ignition",
  "report-started",
  "ignition-final",
  "report-done",
] as const;
export type Stage = (typeof STAGES)[number];

export interface StageTiming {
  /** ms after the storm's start. */
  start: number;
  end: number;
  retries: number;
}

export interface MachineResult {
  mac: string;
  firmware: Firmware;
  arrivalMs: number;
  ip?: string;
  stages: Partial<Record<Stage, StageTiming>>;
  failure?: { stage: Stage; reason: string; retries: number };
}

export interface FleetResult {
  /** ms the registration took (outside the storm's clock). */
  registerMs: number;
  /**
   * The load generator's own cost during the storm: when it is near a full core, or its event loop lags,
   * latencies measure the fleet as much as the server.
   */
  fleet: { cpuSeconds: number; loopDelayP99Ms: number; loopDelayMaxMs: number };
  machines: MachineResult[];
}
