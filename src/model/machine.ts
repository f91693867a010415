import { z } from "zod";
import { LabelsSchema, MacSchema, MetadataSchema, NameSchema } from "./mac.ts";

export const MACHINE_STATES = ["discovered", "ready", "installing", "installed", "running", "failed"] as const;
export const MachineStateSchema = z.enum(MACHINE_STATES);
export type MachineState = z.infer<typeof MachineStateSchema>;

export const ArchSchema = z.enum(["amd64", "arm64"]);
export type Arch = z.infer<typeof ArchSchema>;

/**
 * The network loader DHCP hands out to UEFI firmware: `ipxe`, or `grub` (shim → Debian's signed GRUB on x64,
 * which Secure Boot machines need; GRUB on arm64).
 */
export const LoaderSchema = z.enum(["ipxe", "grub"]);
export type Loader = z.infer<typeof LoaderSchema>;

export const MachineSchema = z.object({
  mac: z.string(),
  uuid: z.string().nullable(),
  serial: z.string().nullable(),
  hostname: z.string().nullable(),
  arch: ArchSchema.nullable(),
  /** This machine's loader, over its profile's (a Secure Boot box in a profile shared with others). */
  loader: LoaderSchema.nullable(),
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
  loader: LoaderSchema.optional(),
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
  loader: LoaderSchema.nullable().optional(),
  labels: LabelsSchema.optional(),
  metadata: MetadataSchema.optional(),
  ip: z.ipv4().nullable().optional(),
});
export type MachineUpdate = z.infer<typeof MachineUpdateSchema>;
