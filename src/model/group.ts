import { z } from "zod";
import { LabelsSchema, MetadataSchema, NameSchema } from "./mac.ts";

/** label → one value or a list of accepted values. */
export const SelectorSchema = z.record(
  z.string().regex(/^[A-Za-z0-9_./-]{1,63}$/, "bad selector key"),
  z.union([z.string(), z.array(z.string()).min(1)]),
);

const GroupFields = {
  description: z.string().max(1024).default(""),
  selector: SelectorSchema.default({}),
  profile: NameSchema,
  metadata: MetadataSchema.default({}),
  /** Labels copied onto machines this group claims. */
  labels: LabelsSchema.default({}),
};
export const GroupBodySchema = z.strictObject(GroupFields);
export const GroupCreateSchema = z.strictObject({ name: NameSchema, ...GroupFields });
export type GroupCreate = z.infer<typeof GroupCreateSchema>;
export type Group = GroupCreate & { createdAt: string; updatedAt: string };
