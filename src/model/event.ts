import { z } from "zod";

export const EventSchema = z.object({
  id: z.number().int(),
  mac: z.string().nullable(),
  kind: z.string(),
  detail: z.record(z.string(), z.unknown()),
  at: z.string(),
  /** The node that recorded it (`nodeName`); null for events older than that setting. */
  node: z.string().nullable(),
});
export type Event = z.infer<typeof EventSchema>;

/** What producers (DHCP, TFTP, HTTP, lifecycle) hand to the event log. */
export interface EventInput {
  mac?: string | null;
  kind: string;
  detail?: Record<string, unknown>;
}

/** Anything that records events: the SQLite log, or a collector in tests of a protocol package. */
export interface EventSink {
  append(event: EventInput): void;
}
