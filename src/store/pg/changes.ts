/**
 * How nodes sharing one PostgreSQL learn that shared state changed: every write to a machine, profile,
 * group or BMC sends `pg_notify(STATE_CHANNEL, <kind>:<key>)` in the writing transaction, so the notice is delivered
 * exactly when the change commits. Each node refetches what a notice names into its replica (./replica.ts).
 */
export const STATE_CHANNEL = "kindling_state";

export type ChangeKind = "m" | "p" | "g" | "b";

/** The payload of a notice: `m:<mac>`, `p:<profile name>`, `g:<group name>`, `b:<mac>` (the machine's BMC). */
export const changeNotice = (kind: ChangeKind, key: string): string => `${kind}:${key}`;

export function parseNotice(payload: string): { kind: ChangeKind; key: string } | undefined {
  const kind = payload.slice(0, 1);
  if (payload[1] !== ":" || !(kind === "m" || kind === "p" || kind === "g" || kind === "b")) return undefined;
  return { kind, key: payload.slice(2) };
}
