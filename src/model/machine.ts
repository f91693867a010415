import { z } from "zod";
import { LabelsSchema, MacSchema, MetadataSchema, NameSchema } from "./mac.ts";

export const MACHINE_STATES = ["discovered", "ready", "installing", "installed", "running", "failed"] as const;
export const MachineStateSchema = z.enum(MACHINE_STATES);
export type MachineState = z.infer<typeof MachineStateSchema>;

export const ArchSchema = z.enum(["amd64", "arm64"]);
export type Arch = z.infer<typeof ArchSchema>;

export const MachineSchema = z.object({
  mac: z.string(),
  uuid: z.string().nullable(),
  serial: z.string().nullable(),
  hostname: z.string().nullable(),
  arch: ArchSchema.nullable(),
  labels: z.record(z.string(), z.string()),
  metadata: z.record(z.string(), z.unknown()),
  profile: z.string().nullable(),
  state: MachineStateSchema,
  ip: z.string().nullable(),
  firstSeen: z.string().nullable(),
  lastSeen: z.string().nullable(),
  installedAt: z.string().nullable(),
  stateChangedAt: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type Machine = z.infer<typeof MachineSchema>;

export const HostnameSchema = z
  .string()
  .regex(
    /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/,
    "not a valid hostname",
  );

/** Body of POST /api/v1/machines. */
export const MachineCreateSchema = z.strictObject({
  mac: MacSchema,
  profile: NameSchema.optional(),
  hostname: HostnameSchema.optional(),
  uuid: z.uuid().optional(),
  serial: z.string().max(128).optional(),
  arch: ArchSchema.optional(),
  labels: LabelsSchema.default({}),
  metadata: MetadataSchema.default({}),
  ip: z.ipv4().optional(),
});
export type MachineCreate = z.infer<typeof MachineCreateSchema>;

/** Body of PATCH /api/v1/machines/:mac; `null` clears a field. */
export const MachineUpdateSchema = z.strictObject({
  profile: NameSchema.nullable().optional(),
  hostname: HostnameSchema.nullable().optional(),
  uuid: z.uuid().nullable().optional(),
  serial: z.string().max(128).nullable().optional(),
  arch: ArchSchema.nullable().optional(),
  labels: LabelsSchema.optional(),
  metadata: MetadataSchema.optional(),
  ip: z.ipv4().nullable().optional(),
});
export type MachineUpdate = z.infer<typeof MachineUpdateSchema>;
