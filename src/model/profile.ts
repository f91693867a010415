import { z } from "zod";
import { boundedJson, NameSchema } from "./mac.ts";
import { ArchSchema } from "./machine.ts";

/** `alpha|beta|stable|lts` or a yearly LTS stream such as `lts-2024`. */
export const ChannelSchema = z
  .string()
  .regex(/^(alpha|beta|stable|lts|lts-\d{4})$/, "must be alpha, beta, stable, lts or lts-YYYY");
export type Channel = z.infer<typeof ChannelSchema>;

/** `current` or a pinned release such as `4593.2.5`. */
export const VersionSchema = z
  .string()
  .regex(/^(current|\d+\.\d+\.\d+)$/, "must be 'current' or a release such as 4593.2.5");

export const FlatcarReleaseSchema = z.strictObject({
  channel: ChannelSchema,
  version: VersionSchema.default("current"),
  arch: ArchSchema.default("amd64"),
});
export type FlatcarRelease = z.infer<typeof FlatcarReleaseSchema>;

/** Raw boot for any other OS: URLs may be absolute or relative to Kindling (`/assets/...`). */
export const RawBootSchema = z.strictObject({
  kernel: z.string().min(1),
  initrd: z.array(z.string().min(1)).default([]),
  args: z.array(z.string()).default([]),
});

export const IgnitionSourceSchema = z
  .strictObject({
    /** Butane YAML template (variant flatcar). */
    butane: z.string().optional(),
    /** Ignition JSON template. */
    json: z.string().optional(),
  })
  .refine((v) => (v.butane === undefined) !== (v.json === undefined), { message: "set exactly one of butane or json" });

export const InstallSchema = z.strictObject({
  /** Target disk, e.g. /dev/sda; unset → flatcar-install -s (smallest disk). */
  disk: z
    .string()
    .regex(/^\/dev\/[A-Za-z0-9/_.-]+$/, "must be a /dev path")
    .optional(),
  oem: z
    .string()
    .regex(/^[a-z0-9_-]+$/)
    .optional(),
  extraArgs: z.array(z.string()).default([]),
});

const ProfileFields = {
  description: z.string().max(1024).default(""),
  /** A Flatcar release booted from Kindling's mirror. */
  flatcar: FlatcarReleaseSchema.optional(),
  /** Or a raw kernel/initrd/args boot. */
  boot: RawBootSchema.optional(),
  /** Or no network boot at all: boot the local disk. */
  localDisk: z.boolean().optional(),
  ignition: IgnitionSourceSchema.optional(),
  /** Present → install to disk with flatcar-install; absent → live (diskless) profile. */
  install: InstallSchema.optional(),
  kernelArgs: z.array(z.string()).default([]),
  /** Template variables available to this profile's Ignition and kernel args. */
  vars: z.record(z.string(), z.unknown()).superRefine(boundedJson).default({}),
};

function exactlyOneTarget(
  p: { flatcar?: unknown; boot?: unknown; localDisk?: boolean | undefined },
  ctx: z.RefinementCtx,
): void {
  const n = Number(p.flatcar !== undefined) + Number(p.boot !== undefined) + Number(p.localDisk === true);
  if (n !== 1)
    ctx.addIssue({ code: "custom", path: ["flatcar"], message: "set exactly one of flatcar, boot or localDisk: true" });
}

/** Body of PUT /api/v1/profiles/:name (and a file in profiles/ minus its name). */
export const ProfileBodySchema = z.strictObject(ProfileFields).superRefine(exactlyOneTarget);
export const ProfileCreateSchema = z.strictObject({ name: NameSchema, ...ProfileFields }).superRefine(exactlyOneTarget);
export type ProfileCreate = z.infer<typeof ProfileCreateSchema>;

export type Profile = ProfileCreate & { builtin: boolean; createdAt: string; updatedAt: string };
