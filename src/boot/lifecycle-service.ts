import type { Logger } from "../log.ts";
import type { Machine, MachineUpdate } from "../model/machine.ts";
import { ConflictError } from "../store/errors.ts";
import type { Store } from "../store/index.ts";
import { type LifecycleEvent, nextState, overdueInstalls } from "./lifecycle.ts";

/** Who or what caused a transition, for the event log. */
export interface Cause {
  by: "api" | "report" | "watchdog" | "dhcp" | "ipxe" | "ui";
  ip?: string | undefined;
  detail?: Record<string, unknown>;
}

/** Applies lifecycle transitions to the store; every one (even a repeat) is an event naming its cause. */
export class Lifecycle {
  constructor(
    private readonly store: Store,
    private readonly log: Logger,
  ) {}

  /** Throws ConflictError (409) with the current state when the transition is illegal. */
  apply(mac: string, event: LifecycleEvent, cause: Cause): Machine {
    const m = this.store.machines.require(mac);
    const t = nextState(m.state, event, m.profile !== null);
    if (!t.ok) throw new ConflictError(`${mac}: ${t.reason}`, { mac, state: m.state, event });
    const updated = t.to === m.state ? m : this.store.machines.setState(mac, t.to);
    this.store.events.append({
      mac,
      kind: `lifecycle.${event}`,
      detail: { from: m.state, to: t.to, by: cause.by, ...(cause.ip ? { ip: cause.ip } : {}), ...cause.detail },
    });
    if (t.to !== m.state) this.log.info({ mac, event, from: m.state, to: t.to, by: cause.by }, "machine state changed");
    return updated;
  }

  /**
   * Changes a machine's fields. A new profile assigns it (discovered → ready) and clearing the profile
   * unassigns it, by the same rules as every other transition; an illegal one changes nothing.
   */
  update(mac: string, patch: MachineUpdate, cause: Cause): Machine {
    const before = this.store.machines.require(mac);
    const event: LifecycleEvent | undefined = patch.profile
      ? "assign"
      : patch.profile === null
        ? "unassign"
        : undefined;
    if (event) {
      const t = nextState(before.state, event, patch.profile != null);
      if (!t.ok) throw new ConflictError(`${mac}: ${t.reason}`, { mac, state: before.state, event });
    }
    const updated = this.store.db.transaction(() => {
      this.store.machines.update(mac, patch);
      this.store.events.append({ mac, kind: "machine.updated", detail: { fields: Object.keys(patch), by: cause.by } });
      return event ? this.apply(mac, event, cause) : this.store.machines.require(mac);
    })();
    return updated;
  }

  /** Marks installs that never reported back as failed. */
  sweep(deadlineSeconds: number, now = Date.now()): Machine[] {
    return overdueInstalls(this.store.machines.list({ state: "installing" }), now, deadlineSeconds).map((m) =>
      this.apply(m.mac, "deadline", { by: "watchdog", detail: { deadlineSeconds, since: m.stateChangedAt } }),
    );
  }
}
