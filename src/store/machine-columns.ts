import type { MachineCreate, MachineState, MachineUpdate } from "../model/machine.ts";

/** A new machine's columns, the same on both engines. */
export function newMachineColumns(input: MachineCreate, state: MachineState, now: string): Record<string, unknown> {
  return {
    mac: input.mac,
    uuid: input.uuid ?? null,
    serial: input.serial ?? null,
    hostname: input.hostname ?? null,
    arch: input.arch ?? null,
    loader: input.loader ?? null,
    labels: JSON.stringify(input.labels),
    metadata: JSON.stringify(input.metadata),
    profile: input.profile ?? null,
    state,
    ip: input.ip ?? null,
    created_at: now,
    updated_at: now,
    state_changed_at: now,
  };
}

/** The columns a patch writes (fields left out stay as they are). */
export function patchColumns(patch: MachineUpdate): Record<string, unknown> {
  const cols: Record<string, unknown> = {};
  for (const key of ["profile", "hostname", "uuid", "serial", "arch", "loader", "ip"] as const) {
    if (patch[key] !== undefined) cols[key] = patch[key];
  }
  if (patch.labels) cols.labels = JSON.stringify(patch.labels);
  if (patch.metadata) cols.metadata = JSON.stringify(patch.metadata);
  return cols;
}

/**
 * The columns every change by an operator or the lifecycle writes besides its own: the time, the state's time
 * when the state moves, and `untouched = 0` (the change takes the machine out of the discovered cap's reach).
 */
export function changeColumns(cols: Record<string, unknown>, now: string): Record<string, unknown> {
  return { ...cols, ...("state" in cols ? { state_changed_at: now } : {}), updated_at: now, untouched: 0 };
}
