import type { CoalescedLog } from "../limits/coalesce.ts";
import { KeyedRate } from "../limits/rate.ts";
import { InvalidFieldError } from "../model/errors.ts";
import type { EventInput } from "../model/event.ts";
import type { Group, GroupCreate } from "../model/group.ts";
import type { Machine, MachineCreate, MachineState, MachineUpdate } from "../model/machine.ts";
import type { FlatcarRelease } from "../model/profile.ts";
import { ConflictError, NotFoundError } from "../store/errors.ts";
import type { Store } from "../store/index.ts";
import type { Sighting } from "../store/machines.ts";
import type { MachineChange } from "../store/writes.ts";
import { initialState, type LifecycleEvent, nextState, overdueInstalls, type ReportKind } from "./lifecycle.ts";
import type { ReleaseSource } from "./releases.ts";

/** Writes lost to other nodes' changes of the same machine before a change gives up (409). */
const MAX_ATTEMPTS = 5;

/** Who or what caused a change, for the event log. */
export interface Cause {
  by: "api" | "report" | "watchdog" | "dhcp" | "ipxe" | "grub" | "ui";
  ip?: string | undefined;
  detail?: Record<string, unknown>;
}

export interface MachinesDeps {
  store: Store;
  releases: ReleaseSource;
  /** New machines one client address may add through `/ipxe` and GRUB requests per minute. */
  discoveriesPerMinute: number;
  /** Where refused and evicting sightings are counted: anyone on the boot network can cause them at any rate. */
  requests: CoalescedLog;
  log: {
    info(obj: object, msg: string): void;
    warn(obj: object, msg: string): void;
  };
}

/**
 * The one owner of a machine's fate: every change to a machine record (a boot request's sighting, an
 * operator's registration, assignment, reinstall or removal, the machine's own reports, the install watchdog)
 * is decided here, by the rules in lifecycle.ts, and each is an event naming its cause. The store only stores;
 * DHCP, `/ipxe`, the API, the console and the CLI (through the API) call these methods. Operator-facing methods
 * return promises so that a store that answers asynchronously can sit behind them without changing a caller.
 */
export class Machines {
  private readonly discoveries: KeyedRate;

  constructor(private readonly d: MachinesDeps) {
    this.discoveries = new KeyedRate(d.discoveriesPerMinute);
  }

  private get store(): Store {
    return this.d.store;
  }

  /**
   * Records that a machine asked to boot (DHCP, `/ipxe`, GRUB): an unknown MAC becomes `discovered`, a known
   * one moves its `last_seen` and learns identity fields it did not have (what an operator typed is kept).
   * Writes go through the boot requests' group commit (store/history-writer.ts). Returns undefined when
   * `cause.ip` added new machines faster than `discoveriesPerMinute`: anyone can invent MACs, and a rack powers
   * on far slower. DHCP names no address (its clients have none yet) and is bounded by `maxDiscovered` alone.
   * Synchronous: it is on every boot request's path.
   */
  sighting(seen: Sighting, cause: Cause & { by: "dhcp" | "ipxe" | "grub" }): Machine | undefined {
    const { ip, by } = cause;
    if (by !== "dhcp" && !this.store.machines.get(seen.mac) && !this.discoveries.take(ip ?? "")) {
      this.d.requests.record({
        kind: `${by}.refused`,
        client: ip,
        reason: "too-many-new",
        detail: { ip, mac: seen.mac, perMinute: this.d.discoveriesPerMinute },
        message: "too many new machines from one address",
        level: "warn",
      });
      return undefined;
    }
    const { machine, created, evicted } = this.store.history.recordSighting(seen);
    // Written at once, not with the batch: a machine's story starts with its discovery, before the event of
    // the exchange that found it (and a new machine is rare next to repeated requests).
    if (created)
      this.store.events.append({
        mac: machine.mac,
        kind: "machine.discovered",
        detail: { via: by, arch: machine.arch, uuid: machine.uuid },
      });
    if (evicted > 0)
      this.d.requests.record({
        kind: "machines.evicted",
        client: ip,
        reason: "max-discovered",
        detail: { evicted, ip },
        message: "discovered-machine cap reached: forgot the least recently seen untouched ones (boot.maxDiscovered)",
        level: "warn",
      });
    return machine;
  }

  /**
   * A boot request repeated by a machine whose previous, identical request taught nothing new (`/ipxe`
   * answered from its cache): only `last_seen` moves, in the group commit.
   */
  seenAgain(mac: string): void {
    this.store.history.touched(mac);
  }

  /** Registers a machine: `ready` with a profile, `discovered` without. Its Flatcar release starts mirroring. */
  async register(input: MachineCreate, cause: Cause): Promise<Machine> {
    await this.profileMustExist(input.profile);
    const m = await this.store.writes.createMachine(input, initialState(input.profile), (created) => [
      { mac: created.mac, kind: "machine.registered", detail: { profile: created.profile, via: cause.by } },
    ]);
    this.prefetch(m.profile, [m.mac]);
    return m;
  }

  /**
   * Changes a machine's fields. A new profile assigns it (discovered → ready) and clearing the profile
   * unassigns it, by the same rules as every other transition; an illegal one changes nothing.
   */
  async update(mac: string, patch: MachineUpdate, cause: Cause): Promise<Machine> {
    await this.profileMustExist(patch.profile);
    const event: LifecycleEvent | undefined = patch.profile
      ? "assign"
      : patch.profile === null
        ? "unassign"
        : undefined;
    const updated = await this.decided(
      mac,
      (before) => {
        const t = event ? nextState(before.state, event, patch.profile != null) : undefined;
        if (t && !t.ok) throw new ConflictError(`${mac}: ${t.reason}`, { mac, state: before.state, event });
        const to = t?.ok ? t.to : before.state;
        return {
          change: { patch, expect: before.state, ...(to !== before.state ? { state: to } : {}) },
          events: [
            { mac, kind: "machine.updated", detail: { fields: Object.keys(patch), by: cause.by } },
            ...(event ? [this.transitionEvent(mac, event, before.state, to, cause)] : []),
          ],
          log: event && to !== before.state ? { event, from: before.state, to } : undefined,
        };
      },
      cause,
    );
    if (patch.profile) this.prefetch(patch.profile, [mac]);
    return updated;
  }

  /** Puts a machine back in line: its next network boot installs again. */
  async reinstall(mac: string, cause: Cause): Promise<Machine> {
    return this.transition(mac, "reinstall", cause);
  }

  /** A report a machine sent over a URL Kindling signed for it. */
  async report(mac: string, kind: ReportKind, cause: Cause): Promise<Machine> {
    return this.transition(mac, kind, cause);
  }

  /**
   * Removes a machine record. `forget` is the operator's "start over" (its next boot finds it discovered);
   * `delete` is the API's plain removal; both keep the machine's history and say which it was.
   */
  async remove(mac: string, how: "forget" | "delete", cause: Cause): Promise<void> {
    await this.store.writes.deleteMachine(mac, (m) => [
      how === "forget"
        ? { mac, kind: "lifecycle.forget", detail: { from: m.state, by: cause.by } }
        : { mac, kind: "machine.deleted", detail: { via: cause.by } },
    ]);
  }

  /** Creates or replaces a group; machines it selects boot its profile, so that profile starts mirroring. */
  async putGroup(group: GroupCreate, cause: Cause): Promise<{ group: Group; created: boolean }> {
    await this.profileMustExist(group.profile);
    const out = await this.store.writes.putGroup(group, "put", ({ created }) => [
      { kind: created ? "group.created" : "group.updated", detail: { name: group.name, by: cause.by } },
    ]);
    this.prefetch(group.profile, []);
    return out;
  }

  /** Creates a group; a group of that name already there is a conflict. */
  async createGroup(group: GroupCreate, cause: Cause): Promise<Group> {
    await this.profileMustExist(group.profile);
    const { group: saved } = await this.store.writes.putGroup(group, "create", () => [
      { kind: "group.created", detail: { name: group.name, by: cause.by } },
    ]);
    this.prefetch(group.profile, []);
    return saved;
  }

  async deleteGroup(name: string, cause: Cause): Promise<void> {
    await this.store.writes.deleteGroup(name, () => [{ kind: "group.deleted", detail: { name, by: cause.by } }]);
  }

  /** Marks installs that never reported back within the deadline as failed. */
  async sweep(deadlineSeconds: number, now = Date.now()): Promise<Machine[]> {
    const out: Machine[] = [];
    for (const m of overdueInstalls(this.store.machines.list({ state: "installing" }), now, deadlineSeconds)) {
      try {
        out.push(
          await this.transition(m.mac, "deadline", {
            by: "watchdog",
            detail: { deadlineSeconds, since: m.stateChangedAt },
          }),
        );
      } catch (err) {
        // Its report (or another node's watchdog) got there first: nothing is overdue any more.
        if (!(err instanceof ConflictError) && !(err instanceof NotFoundError)) throw err;
      }
    }
    return out;
  }

  /** Runs the sweep at a period well inside the deadline; returns the function that stops it. */
  startWatchdog(deadlineSeconds: number): () => void {
    const timer = setInterval(
      () => {
        // A busy or failing database is retried at the next tick; the process keeps serving boots.
        this.sweep(deadlineSeconds).catch((err: unknown) => this.d.log.warn({ err }, "install watchdog sweep failed"));
      },
      Math.min(30_000, (deadlineSeconds * 1000) / 2),
    );
    timer.unref();
    return () => clearInterval(timer);
  }

  /** Applies one lifecycle event; throws ConflictError (409) with the current state when it is illegal. */
  private transition(mac: string, event: LifecycleEvent, cause: Cause): Promise<Machine> {
    return this.decided(
      mac,
      (m) => {
        const t = nextState(m.state, event, m.profile !== null);
        if (!t.ok) throw new ConflictError(`${mac}: ${t.reason}`, { mac, state: m.state, event });
        const moves = t.to !== m.state;
        return {
          change: {
            expect: m.state,
            state: t.to,
            ...(t.to === "installed" ? { installedAt: new Date().toISOString() } : {}),
          },
          events: [this.transitionEvent(mac, event, m.state, t.to, cause)],
          log: moves ? { event, from: m.state, to: t.to } : undefined,
          write: moves,
        };
      },
      cause,
    );
  }

  /**
   * Decides a change from the machine as it is and writes it only if the machine is still so: where nodes
   * share a database another node may have moved the machine meanwhile, and then the rules decide again
   * from what won (the write fails its `expect` and the replica has learned the newer state).
   */
  private async decided(
    mac: string,
    decide: (m: Machine) => {
      change: MachineChange;
      events: EventInput[];
      log: { event: LifecycleEvent; from: MachineState; to: MachineState } | undefined;
      /** False: nothing to write but the events (a transition to the state the machine is already in). */
      write?: boolean;
    },
    cause: Cause,
  ): Promise<Machine> {
    if (!this.store.machines.get(mac)) await this.store.writes.refresh("machine", mac);
    for (let attempt = 1; ; attempt++) {
      const before = this.store.machines.require(mac);
      const d = decide(before);
      if (d.write === false) {
        for (const e of d.events) this.event(e);
        return before;
      }
      const written = await this.store.writes.updateMachine(mac, d.change, () => d.events);
      if (written) {
        if (d.log) this.d.log.info({ mac, ...d.log, by: cause.by }, "machine state changed");
        return written;
      }
      if (attempt >= MAX_ATTEMPTS)
        throw new ConflictError(`${mac}: changed by others ${MAX_ATTEMPTS} times while this change was decided`, {
          mac,
        });
    }
  }

  private transitionEvent(
    mac: string,
    event: LifecycleEvent,
    from: MachineState,
    to: MachineState,
    cause: Cause,
  ): EventInput {
    return {
      mac,
      kind: `lifecycle.${event}`,
      detail: { from, to, by: cause.by, ...(cause.ip ? { ip: cause.ip } : {}), ...cause.detail },
    };
  }

  private event(e: EventInput): void {
    this.store.events.append(e);
  }

  private async profileMustExist(name: string | null | undefined): Promise<void> {
    if (!name || this.store.profiles.get(name)) return;
    // Another node may have created it a moment ago.
    await this.store.writes.refresh("profile", name);
    if (!this.store.profiles.get(name)) throw new InvalidFieldError("profile", `no profile named ${name}`);
  }

  /**
   * Starts mirroring the Flatcar release a profile boots, so the files are verified by the time the machine
   * asks rather than when it first does. A failure lands in the history of the machines that were assigned.
   */
  private prefetch(profileName: string | null | undefined, macs: string[]): void {
    const flatcar = profileName ? this.store.profiles.get(profileName)?.flatcar : undefined;
    if (!flatcar) return;
    const failed = (reason: string) => {
      for (const mac of macs.length ? macs : [null])
        this.event({
          mac,
          kind: "flatcar.prefetch.failed",
          detail: { profile: profileName, ...release(flatcar), reason },
        });
    };
    const status = this.d.releases.ensure(flatcar);
    if (status.state === "failed") failed(status.reason);
    else if (status.state === "syncing")
      this.d.releases.sync(flatcar).catch((err: unknown) => failed(err instanceof Error ? err.message : String(err)));
  }
}

const release = (r: FlatcarRelease) => ({ channel: r.channel, version: r.version, arch: r.arch });
