import { type Context, Hono } from "hono";
import type { IgnitionConfigs, Stage } from "../../boot/configs.ts";
import { REPORT_KINDS, type ReportKind } from "../../boot/lifecycle.ts";
import type { Machines } from "../../boot/machines.ts";
import type { Purpose, Signer } from "../../boot/sign.ts";
import type { CoalescedLog } from "../../limits/coalesce.ts";
import type { Logger } from "../../log.ts";
import { normalizeMac } from "../../model/identity.ts";
import type { Store } from "../../store/index.ts";
import { clientIp } from "./boot.ts";

/** Longest report body kept (the tail of an installer log). */
const REPORT_TAIL = 8 * 1024;

/**
 * Per-machine endpoints that machines call with URLs Kindling signed for them: Ignition configs often hold
 * secrets, and reports change a machine's state, so knowing a MAC is not enough.
 */
export function ignitionRoutes(deps: {
  configs: IgnitionConfigs;
  machines: Machines;
  store: Store;
  signer: Signer;
  log: Logger;
  /** Where refused requests are counted (anyone can send them). */
  coalesced: CoalescedLog;
  /** When set, the request must also come from the address leased to the MAC (full DHCP mode). */
  /** The address leased to a machine now (`boot.requireLeasedIp`); undefined: the check is off. */
  leasedIp: ((mac: string) => Promise<string | undefined>) | undefined;
}): Hono {
  const { configs, machines, store, signer, log, leasedIp, coalesced } = deps;
  const app = new Hono();

  /**
   * The MAC when the URL carries a valid signature for `purpose`; otherwise a 403 response (and an event).
   * A `group` in the URL is part of what was signed (the group the machine booted through).
   */
  const authorize = async (c: Context, purpose: Purpose): Promise<string | Response> => {
    const mac = normalizeMac(c.req.query("mac") ?? "");
    const ip = clientIp(c);
    let verdict: string = mac
      ? signer.verify(purpose, mac, c.req.query("exp"), c.req.query("sig"), Date.now(), c.req.query("group"))
      : "invalid";
    if (mac && verdict === "ok" && leasedIp && (await leasedIp(mac)) !== ip) verdict = "not-from-leased-ip";
    if (mac && verdict === "ok") return mac;
    coalesced.record({
      kind: `${purpose}.refused`,
      client: ip,
      reason: verdict,
      mac,
      detail: { verdict, ip, path: c.req.path },
      message: "refused a request without a valid signature",
      level: "warn",
    });
    const error = {
      expired: "signed URL expired",
      "not-from-leased-ip": "request does not come from the address leased to this machine",
    }[verdict];
    return c.json({ error: error ?? "missing or invalid signature" }, 403);
  };

  const serve = (stage: Stage) => async (c: Context) => {
    const mac = await authorize(c, stage === "boot" ? "ignition" : "final");
    if (typeof mac !== "string") return mac;
    const machine = store.machines.get(mac);
    if (!machine) return c.json({ error: `machine ${mac} not found` }, 404);
    const answer = configs.forMachine(machine, stage, undefined, c.req.query("group"));
    if (!answer.ok) {
      store.events.append({
        mac,
        kind: answer.status === 500 ? "render.failed" : "ignition.unavailable",
        detail: { stage, profile: answer.profile ?? null, error: answer.reason },
      });
      log.warn(
        { route: c.req.path, mac, profile: answer.profile, status: answer.status, reason: answer.reason },
        "ignition not served",
      );
      return c.json({ error: answer.reason }, answer.status);
    }
    store.events.append({
      mac,
      kind: "ignition.served",
      detail: { stage, kind: answer.kind, spec: answer.spec, profile: answer.profile, ip: clientIp(c) },
    });
    log.info(
      { route: c.req.path, mac, profile: answer.profile, kind: answer.kind, spec: answer.spec, status: 200 },
      "ignition served",
    );
    return c.json(answer.config);
  };

  app.get("/ignition", serve("boot"));
  app.get("/ignition/final", serve("final"));

  app.post("/report", async (c) => {
    const mac = await authorize(c, "report");
    if (typeof mac !== "string") return mac;
    const kind = c.req.query("kind");
    if (!REPORT_KINDS.includes(kind as ReportKind))
      return c.json({ error: `kind must be one of ${REPORT_KINDS.join(", ")}`, field: "kind" }, 400);
    const text = await c.req.text();
    const m = await machines.report(mac, kind as ReportKind, {
      by: "report",
      ip: clientIp(c),
      detail: text ? { log: text.slice(-REPORT_TAIL) } : {},
    });
    return c.json({ mac, state: m.state });
  });

  return app;
}
