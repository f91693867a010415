import type { Lifecycle } from "../boot/lifecycle-service.ts";
import type { Machine } from "../model/machine.ts";

/** The one place power code asks the machine's owner for a reinstall (back to `ready`). */
export async function reinstallMachine(lifecycle: Lifecycle, mac: string, by: "api" | "ui"): Promise<Machine> {
  return lifecycle.apply(mac, "reinstall", { by, detail: { powerCycle: true } });
}
