import type { Machines } from "../boot/machines.ts";
import type { Logger } from "../log.ts";
import type { Machine } from "../model/machine.ts";
import type { BmcDriver, BmcRecord, PowerAction, PowerState } from "../model/power.ts";
import type { BmcStore } from "../store/bmcs.ts";
import type { EventStore } from "../store/events.ts";
import type { MachineStore } from "../store/machines.ts";
import { bootModeOf } from "./boot-mode.ts";
import { type BmcCall, BmcError, type PowerDriver } from "./driver.ts";
import { IpmiDriver } from "./ipmi.ts";
import { KeyError } from "./keyring.ts";
import { BmcBusyError, BmcQueues } from "./queue.ts";
import { RedfishDriver } from "./redfish.ts";

export interface PowerSettings {
  /** Hard bound on one BMC call, from start to answer or error. */
  timeoutSeconds: number;
  /** The poller asks `pollBatch` BMCs (the ones asked longest ago) every `pollSeconds`; 0 turns it off. */
  pollSeconds: number;
  pollBatch: number;
  /** Calls that may wait behind the running one, per BMC. */
  queuePerBmc: number;
  /** BMC calls running at once across all BMCs. */
  maxConcurrent: number;
  /** The ipmitool binary. */
  ipmitool: string;
}

export interface PowerResult {
  mac: string;
  action: PowerAction;
  ok: boolean;
  /** The BMC's answer, or why there was none. */
  answer: string;
  state?: PowerState;
  /** BmcError kind (or `busy`) when !ok. */
  errorKind?: string;
}

type By = "api" | "ui" | "poller";

const IMPLIED_STATE: Partial<Record<PowerAction, PowerState>> = { on: "on", off: "off", cycle: "on", reset: "on" };

/**
 * Out-of-band power: every action goes through the BMC's queue (one call at a time per BMC, a hard deadline
 * each) and becomes an event in the machine's history with the BMC's answer. Nothing here runs on the boot
 * path: DHCP/TFTP/HTTP never wait for a BMC.
 */
export class PowerService {
  private readonly queues: BmcQueues;
  private readonly drivers: Record<BmcDriver, PowerDriver>;
  private poller: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly d: {
      bmcs: BmcStore;
      machines: MachineStore;
      events: EventStore;
      /** The machine owner: a reinstall with a power cycle is its transition first. */
      owner: Pick<Machines, "reinstall">;
      log: Logger;
      settings: PowerSettings;
    },
  ) {
    this.queues = new BmcQueues(d.settings.queuePerBmc, d.settings.maxConcurrent);
    this.drivers = {
      ipmi: new IpmiDriver(d.settings.ipmitool),
      redfish: new RedfishDriver(),
    };
  }

  /** Runs one action and records it; never throws for a BMC failure (the result says it), only for a missing BMC. */
  async act(mac: string, action: PowerAction, by: By): Promise<PowerResult> {
    const bmc = this.d.bmcs.require(mac);
    const machine = this.d.machines.require(mac);
    const started = Date.now();
    let result: PowerResult;
    try {
      const r: { answer: string; state?: PowerState } = await this.queues.run(queueKey(bmc), () =>
        this.call(mac, async (call, driver): Promise<{ answer: string; state?: PowerState }> => {
          switch (action) {
            case "status": {
              const s = await driver.status(call);
              return { answer: s.answer, state: s.state };
            }
            case "pxe-once": {
              const mode = bootModeOf(machine, await this.d.events.listOrLocal({ mac, limit: 200 }));
              return { answer: await driver.pxeOnce(call, mode) };
            }
            default:
              return { answer: await driver.power(call, action) };
          }
        }),
      );
      result = { mac, action, ok: true, ...r };
    } catch (err) {
      result = failure(mac, action, err);
    }
    // A done hard power change says the state as well as a status would; a soft-off only asked the OS.
    const implied = result.ok ? IMPLIED_STATE[action] : undefined;
    if (result.state ?? implied) this.d.bmcs.setPower(mac, (result.state ?? implied)!, null);
    else if (!result.ok && result.errorKind !== "busy") this.d.bmcs.setPower(mac, bmc.power.state, result.answer);
    this.d.events.append({
      mac,
      kind: `power.${action}`,
      detail: {
        ok: result.ok,
        ...(result.ok ? { answer: result.answer } : { error: result.answer, errorKind: result.errorKind }),
        ...(result.state ? { state: result.state } : {}),
        driver: bmc.driver,
        bmc: `${bmc.address}:${bmc.port}`,
        by,
        ms: Date.now() - started,
      },
    });
    if (!result.ok) this.d.log.warn({ mac, action, error: result.answer, by }, "BMC action failed");
    else this.d.log.info({ mac, action, by }, "BMC action done");
    return { ...result, mac, action };
  }

  /**
   * Reinstall without anybody at the rack: back to `ready`, next boot from the network once, then a power
   * cycle (power on when it was off). A BMC that refuses the boot override is still cycled; any other failure
   * stops there. The machine stays `ready` either way, so its next boot installs when somebody presses the button.
   */
  async reinstall(mac: string, by: "api" | "ui"): Promise<{ machine: Machine; steps: PowerResult[] }> {
    this.d.bmcs.require(mac);
    const machine = await this.d.owner.reinstall(mac, { by, detail: { powerCycle: true } });
    const steps: PowerResult[] = [];
    const pxe = await this.act(mac, "pxe-once", by);
    steps.push(pxe);
    // A BMC without boot override support still power-cycles; a machine whose boot order starts with the
    // network (what Kindling asks for) then installs anyway. An unreachable BMC or bad credentials stop here.
    if (!pxe.ok && pxe.errorKind !== "refused" && pxe.errorKind !== "unsupported") return { machine, steps };
    const status = await this.act(mac, "status", by);
    steps.push(status);
    if (!status.ok) return { machine, steps };
    steps.push(await this.act(mac, status.state === "off" ? "on" : "cycle", by));
    return { machine, steps };
  }

  /** The same action on many machines: each through its own BMC queue, a machine without a BMC is a failure. */
  actMany(macs: readonly string[], action: PowerAction, by: By): Promise<PowerResult[]> {
    return Promise.all(
      macs.map((mac) =>
        this.act(mac, action, by).catch(
          (err: Error): PowerResult => ({ mac, action, ok: false, answer: err.message, errorKind: "no-bmc" }),
        ),
      ),
    );
  }

  /** A change to a machine's BMC record, in its history (never the password). */
  recordChange(mac: string, kind: "power.bmc-set" | "power.bmc-cleared", detail: Record<string, unknown>): void {
    this.d.events.append({ mac, kind, detail });
    this.d.log.info({ mac, ...detail }, kind === "power.bmc-set" ? "BMC set" : "BMC cleared");
  }

  /** Starts the bounded-rate power-state poller. */
  startPolling(): void {
    const { pollSeconds, pollBatch } = this.d.settings;
    if (pollSeconds <= 0) return;
    this.poller = setInterval(() => void this.pollOnce(pollBatch), pollSeconds * 1000);
    this.poller.unref();
  }

  /** Asks up to `batch` idle BMCs for their power state; an event only when the state changed. */
  async pollOnce(batch: number): Promise<void> {
    const macs = this.d.bmcs
      .stalest(batch * 2)
      .filter((m) => {
        const b = this.d.bmcs.get(m);
        return b !== undefined && !this.queues.busy(queueKey(b));
      })
      .slice(0, batch);
    await Promise.all(
      macs.map(async (mac) => {
        const before = this.d.bmcs.get(mac);
        if (!before || this.closed) return;
        try {
          const s = await this.queues.run(queueKey(before), () =>
            this.call(mac, (call, driver) => driver.status(call)),
          );
          this.d.bmcs.setPower(mac, s.state, null);
          if (s.state !== before.power.state)
            this.d.events.append({
              mac,
              kind: "power.state",
              detail: { from: before.power.state, to: s.state, answer: s.answer, by: "poller" },
            });
        } catch (err) {
          const f = failure(mac, "status", err);
          if (f.errorKind !== "busy") this.d.bmcs.setPower(mac, before.power.state, f.answer);
        }
      }),
    );
  }

  close(): void {
    this.closed = true;
    if (this.poller) clearInterval(this.poller);
    void (this.drivers.redfish as Partial<RedfishDriver>).close?.();
  }

  /** One driver call under the hard deadline; the password is read (decrypted) for this call only. */
  private async call<T>(mac: string, fn: (call: BmcCall, driver: PowerDriver) => Promise<T>): Promise<T & object> {
    const bmc = this.d.bmcs.require(mac);
    const timeoutMs = this.d.settings.timeoutSeconds * 1000;
    const ctl = new AbortController();
    const call: BmcCall = { bmc, password: this.d.bmcs.password(mac), signal: ctl.signal, timeoutMs };
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        ctl.abort();
        reject(
          new BmcError(
            `no answer from ${bmc.driver} BMC ${bmc.address}:${bmc.port} within ${timeoutMs / 1000} s`,
            "timeout",
          ),
        );
      }, timeoutMs);
    });
    try {
      // The race, not only the signal: a driver stuck where the signal does not reach still ends here.
      return (await Promise.race([fn(call, this.drivers[bmc.driver]), deadline])) as T & object;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** One line per BMC, not per machine: a chassis BMC (blades, a Redfish service with several systems) serves many. */
const queueKey = (b: BmcRecord) => `${b.driver}://${b.address}:${b.port}`;

function failure(mac: string, action: PowerAction, err: unknown): PowerResult {
  if (err instanceof BmcError) return { mac, action, ok: false, answer: err.message, errorKind: err.kind };
  if (err instanceof BmcBusyError) return { mac, action, ok: false, answer: err.message, errorKind: "busy" };
  if (err instanceof KeyError) return { mac, action, ok: false, answer: err.message, errorKind: "key" };
  throw err;
}
