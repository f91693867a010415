import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { MacSchema } from "../../model/mac.ts";
import { MachineSchema } from "../../model/machine.ts";
import { BmcInputSchema, BmcViewSchema, PowerActionSchema, PowerStateSchema, viewOf } from "../../model/power.ts";
import type { PowerResult } from "../../power/service.ts";
import { KeyRotationError, type Power } from "../../power/start.ts";
import { ValidationError } from "../errors.ts";
import { body, ErrorSchema, errors, json, macOf } from "./common.ts";

const MacParam = z.object({
  mac: z.string().openapi({ param: { name: "mac", in: "path" }, example: "52:54:00:12:34:56" }),
});

const PowerResultSchema = z
  .object({
    mac: z.string(),
    action: PowerActionSchema,
    ok: z.boolean(),
    answer: z.string().openapi({ description: "the BMC's answer, or why there was none" }),
    state: PowerStateSchema.optional(),
    errorKind: z.string().optional(),
    /** On failure: the answer again, where every API error carries its message. */
    error: z.string().optional(),
  })
  .meta({ id: "PowerResult" });

const errorOf = (r: PowerResult) => `${r.mac} ${r.action}: ${r.answer}`;
const withError = (r: PowerResult) => (r.ok ? r : { ...r, error: errorOf(r) });

const ActionBodySchema = z.strictObject({
  action: PowerActionSchema,
  /** With `cycle`: reinstall first (back to ready), next boot from the network once, then cycle (or power on). */
  reinstall: z.boolean().optional(),
});

const BulkBodySchema = z.strictObject({
  macs: z.array(MacSchema).min(1).max(500),
  action: PowerActionSchema,
});

/** A failed BMC call: 504 when it did not answer in time, 409 when its queue is full, 502 otherwise. */
const statusOf = (r: PowerResult) =>
  r.ok ? 200 : r.errorKind === "timeout" ? 504 : r.errorKind === "busy" ? 409 : 502;

const bmcFailure = {
  409: json(PowerResultSchema, "the BMC has too many calls waiting"),
  502: json(PowerResultSchema, "the BMC refused or could not be reached (answer says why)"),
  504: json(PowerResultSchema, "the BMC did not answer within power.timeoutSeconds"),
};

export function registerPower(app: OpenAPIHono, power: Power): void {
  const by = "api" as const;

  app.openapi(
    createRoute({
      method: "put",
      path: "/machines/{mac}/bmc",
      summary: "Set (or replace) a machine's BMC; the password is write-only and stored encrypted",
      request: { params: MacParam, ...body(BmcInputSchema) },
      responses: { 200: json(BmcViewSchema, "the BMC, without its password"), ...errors(400, 401, 404, 413, 415) },
    }),
    async (c) => {
      const mac = macOf(c.req.valid("param").mac);
      const input = c.req.valid("json");
      if (input.driver === "redfish" && input.cipherSuite !== undefined)
        throw new ValidationError("cipherSuite", "cipherSuite: only for driver ipmi", [
          { field: "cipherSuite", message: "only for driver ipmi" },
        ]);
      if (input.driver === "ipmi")
        for (const field of ["systemId", "auth", "caCert", "insecure"] as const)
          if (input[field] !== undefined)
            throw new ValidationError(field, `${field}: only for driver redfish`, [
              { field, message: "only for driver redfish" },
            ]);
      const bmc = await power.bmcs.put(mac, input);
      power.service.recordChange(mac, "power.bmc-set", {
        driver: bmc.driver,
        bmc: `${bmc.address}:${bmc.port}`,
        username: bmc.username,
        by,
      });
      return c.json(viewOf(bmc), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/machines/{mac}/bmc",
      summary: "A machine's BMC (never its password)",
      request: { params: MacParam },
      responses: { 200: json(BmcViewSchema, "the BMC"), ...errors(400, 401, 404) },
    }),
    (c) => c.json(viewOf(power.bmcs.require(macOf(c.req.valid("param").mac))), 200),
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/machines/{mac}/bmc",
      summary: "Remove a machine's BMC (and its stored password)",
      request: { params: MacParam },
      responses: { 204: { description: "removed" }, ...errors(400, 401, 404) },
    }),
    async (c) => {
      const mac = macOf(c.req.valid("param").mac);
      await power.bmcs.delete(mac);
      power.service.recordChange(mac, "power.bmc-cleared", { by });
      return c.body(null, 204);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/machines/{mac}/power",
      summary: "The machine's power state: as last seen (poller or action), or asked now with refresh=true",
      request: {
        params: MacParam,
        query: z.object({ refresh: z.enum(["true", "false"]).optional() }),
      },
      responses: {
        200: json(
          z.object({ state: PowerStateSchema, checkedAt: z.string().nullable(), error: z.string().nullable() }),
          "power state",
        ),
        ...errors(400, 401, 404),
        ...bmcFailure,
      },
    }),
    async (c) => {
      const mac = macOf(c.req.valid("param").mac);
      if (c.req.valid("query").refresh === "true") {
        const r = await power.service.act(mac, "status", by);
        if (!r.ok) return c.json(withError(r), statusOf(r) as 502);
      }
      return c.json(power.bmcs.require(mac).power, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/machines/{mac}/power",
      summary: "A power action through the machine's BMC; `cycle` with `reinstall: true` reinstalls hands-free",
      description:
        "Actions: status, on, off (hard), soft-off (ACPI), cycle, reset, pxe-once (next boot from the network, " +
        "once). With `reinstall: true` (only with cycle) the machine goes back to ready, the next boot is set to " +
        "the network once and it is power-cycled (powered on when off); the answer lists each step. Every action " +
        "is an event in the machine's history with the BMC's answer.",
      request: { params: MacParam, ...body(ActionBodySchema) },
      responses: {
        200: json(
          z.union([PowerResultSchema, z.object({ machine: MachineSchema, steps: z.array(PowerResultSchema) })]),
          "done",
        ),
        ...errors(400, 401, 404, 413, 415),
        ...bmcFailure,
      },
    }),
    async (c) => {
      const mac = macOf(c.req.valid("param").mac);
      const { action, reinstall } = c.req.valid("json");
      if (reinstall) {
        if (action !== "cycle")
          throw new ValidationError("reinstall", "reinstall: only with action cycle", [
            { field: "reinstall", message: "only with action cycle" },
          ]);
        const out = await power.service.reinstall(mac, by);
        // The last step decides: a refused boot override before a done power cycle is still a reinstall.
        const last = out.steps.at(-1)!;
        return c.json(last.ok ? out : { ...out, error: errorOf(last) }, statusOf(last) as 200);
      }
      const r = await power.service.act(mac, action, by);
      return c.json(withError(r), statusOf(r) as 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/power",
      summary: "One power action on many machines (each through its own BMC queue); one result per machine",
      request: body(BulkBodySchema),
      responses: {
        200: json(z.object({ results: z.array(PowerResultSchema) }), "one result per MAC, failures included"),
        ...errors(400, 401, 413, 415),
      },
    }),
    async (c) => {
      const { macs, action } = c.req.valid("json");
      return c.json({ results: await power.service.actMany([...new Set(macs)], action, by) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/bmc-keys/rotate",
      summary: "Add a new BMC key to the key file and re-encrypt every stored BMC password with it",
      responses: {
        200: json(z.object({ keyId: z.string(), rewrapped: z.number().int() }), "rotated"),
        409: json(ErrorSchema, "keys come from the environment"),
        ...errors(401),
      },
    }),
    async (c) => {
      try {
        return c.json(await power.rotateKey(), 200);
      } catch (err) {
        if (err instanceof KeyRotationError) return c.json({ error: err.message }, 409);
        throw err;
      }
    },
  );
}
