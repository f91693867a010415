import { type Context, Hono } from "hono";
import { normalizeMac } from "../../model/identity.ts";
import { BmcInputSchema, PowerActionSchema } from "../../model/power.ts";
import type { PowerResult } from "../../power/service.ts";
import type { Power } from "../../power/start.ts";
import { ConflictError, NotFoundError } from "../../store/errors.ts";
import type { Store } from "../../store/index.ts";
import { MachinePower, PowerPage, type PowerRow, PowerRows } from "./pages/power.tsx";
import { flashRedirect, formOf, takeFlash } from "./session.ts";

/** BMCs per console page. */
const PAGE = 100;

const summary = (r: PowerResult) => `${r.mac} ${r.action}: ${r.ok ? "" : "failed: "}${r.answer}`;

/** The console's power pages and forms (mounted behind the session guard). */
export function powerUi(store: Store, power: Power): Hono {
  const app = new Hono();
  const rows = (after = ""): PowerRow[] =>
    power.bmcs.page(PAGE, after).map((bmc) => ({ bmc, machine: store.machines.get(bmc.mac) }));
  const macOf = (c: Context) => normalizeMac(c.req.param("mac") ?? "") ?? c.req.param("mac") ?? "";

  app.get("/power", (c) => {
    const after = c.req.query("after") ?? "";
    const page = rows(after);
    const next = page.length === PAGE ? `/ui/power?after=${encodeURIComponent(page.at(-1)!.bmc.mac)}` : undefined;
    return c.html(<PowerPage csrf={c.get("session").csrf} flash={takeFlash(c)} rows={page} next={next} />);
  });
  app.get("/power/rows", (c) => c.html(<PowerRows rows={rows(c.req.query("after") ?? "")} />));
  app.get("/machines/:mac/power", (c) => {
    const mac = macOf(c);
    return c.html(<MachinePower csrf={c.get("session").csrf} mac={mac} bmc={power.bmcs.get(mac)} />);
  });

  /** One action (or reinstall + cycle) on one machine; the flash carries the BMC's answer. */
  const run = async (mac: string, action: string): Promise<{ ok: boolean; text: string }> => {
    try {
      if (action === "reinstall") {
        const out = await power.service.reinstall(mac, "ui");
        const last = out.steps.at(-1)!;
        return { ok: last.ok, text: `${mac} is ${out.machine.state}; ${out.steps.map(summary).join("; ")}` };
      }
      const parsed = PowerActionSchema.safeParse(action);
      if (!parsed.success) return { ok: false, text: `${mac}: unknown action ${JSON.stringify(action)}` };
      const r = await power.service.act(mac, parsed.data, "ui");
      return { ok: r.ok, text: summary(r) };
    } catch (err) {
      if (err instanceof NotFoundError || err instanceof ConflictError) return { ok: false, text: err.message };
      throw err;
    }
  };

  app.post("/machines/:mac/power", async (c) => {
    const mac = macOf(c);
    const form = (await formOf(c)) ?? {};
    const r = await run(mac, String(form.action ?? ""));
    return flashRedirect(c, `/ui/machines/${mac}`, { kind: r.ok ? "ok" : "error", text: r.text });
  });

  app.post("/power/bulk", async (c) => {
    const form = (await formOf(c)) ?? {};
    const macs = ([] as unknown[]).concat(form.mac ?? []).filter((m): m is string => typeof m === "string");
    if (macs.length === 0) return flashRedirect(c, "/ui/power", { kind: "error", text: "Tick at least one machine." });
    const action = String(form.action ?? "");
    const results = await Promise.all(macs.slice(0, 500).map((m) => run(normalizeMac(m) ?? m, action)));
    const failed = results.filter((r) => !r.ok);
    return flashRedirect(c, "/ui/power", {
      kind: failed.length ? "error" : "ok",
      text: `${action}: ${results.length - failed.length} of ${results.length} done. ${failed.map((f) => f.text).join("; ")}`,
    });
  });

  app.post("/machines/:mac/bmc", async (c) => {
    const mac = macOf(c);
    const form = (await formOf(c)) ?? {};
    const text = (k: string) => (typeof form[k] === "string" && form[k] !== "" ? (form[k] as string) : undefined);
    const num = (k: string) => (text(k) === undefined ? undefined : Number(text(k)));
    const input = BmcInputSchema.safeParse({
      driver: text("driver"),
      address: text("address"),
      port: num("port"),
      username: text("username"),
      password: text("password"),
      ...(text("driver") === "ipmi"
        ? { cipherSuite: num("cipherSuite") }
        : {
            systemId: text("systemId"),
            caCert: text("caCert"),
            insecure: form.insecure === "true" ? true : undefined,
          }),
    });
    if (!input.success)
      return flashRedirect(c, `/ui/machines/${mac}`, {
        kind: "error",
        text: `BMC not saved: ${input.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`,
      });
    try {
      const b = await power.bmcs.put(mac, input.data);
      power.service.recordChange(mac, "power.bmc-set", {
        driver: b.driver,
        bmc: `${b.address}:${b.port}`,
        username: b.username,
        by: "ui",
      });
    } catch (err) {
      if (err instanceof NotFoundError) return flashRedirect(c, "/ui/machines", { kind: "error", text: err.message });
      throw err;
    }
    return flashRedirect(c, `/ui/machines/${mac}`, {
      kind: "ok",
      text: `${mac}: BMC saved (password stored encrypted).`,
    });
  });

  app.post("/machines/:mac/bmc/clear", async (c) => {
    const mac = macOf(c);
    try {
      await power.bmcs.delete(mac);
    } catch (err) {
      if (err instanceof NotFoundError)
        return flashRedirect(c, `/ui/machines/${mac}`, { kind: "error", text: err.message });
      throw err;
    }
    power.service.recordChange(mac, "power.bmc-cleared", { by: "ui" });
    return flashRedirect(c, `/ui/machines/${mac}`, { kind: "ok", text: `${mac}: BMC removed.` });
  });

  return app;
}
