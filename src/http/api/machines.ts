import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { Machines } from "../../boot/machines.ts";
import { MachineCreateSchema, MachineSchema, MachineStateSchema, MachineUpdateSchema } from "../../model/machine.ts";
import type { Store } from "../../store/index.ts";
import { decodeCursor, encodeCursor } from "../cursor.ts";
import { body, errors, json, macOf } from "./common.ts";

const MacParam = z.object({
  mac: z.string().openapi({ param: { name: "mac", in: "path" }, example: "52:54:00:12:34:56" }),
});
const Machine = MachineSchema.meta({ id: "Machine" });

/** Machines per answer of GET /machines unless `limit` says otherwise, and the most it may say. */
export const DEFAULT_PAGE = 100;
export const MAX_PAGE = 1000;

/** Reads come from the store; every change goes through the machine owner. */
export function registerMachines(app: OpenAPIHono, store: Store, machines: Machines): void {
  app.openapi(
    createRoute({
      method: "get",
      path: "/machines",
      summary: "List machines, a page at a time",
      description:
        "Machines by MAC, at most `limit` per answer. When more follow, the `X-Next-Cursor` header holds a " +
        "token: ask again with the same filters and `cursor` set to it for the next page.",
      request: {
        query: z.object({
          state: MachineStateSchema.optional(),
          profile: z.string().optional(),
          search: z.string().max(256).optional(),
          limit: z.coerce
            .number()
            .int()
            .min(1)
            .max(MAX_PAGE)
            .default(DEFAULT_PAGE)
            .openapi({ description: `page size (default ${DEFAULT_PAGE}, at most ${MAX_PAGE})` }),
          cursor: z
            .string()
            .max(1024)
            .optional()
            .openapi({ description: "opaque token from a previous answer's X-Next-Cursor header" }),
        }),
      },
      responses: {
        200: {
          ...json(z.array(Machine), "a page of machines, by MAC"),
          headers: z.object({
            "X-Next-Cursor": z
              .string()
              .optional()
              .openapi({ description: "present when more machines follow: the `cursor` for the next page" }),
          }),
        },
        ...errors(400, 401),
      },
    }),
    (c) => {
      const { limit, cursor, ...filter } = c.req.valid("query");
      const at = cursor ? decodeCursor(cursor) : {};
      const page = store.machines.page(filter, { limit, ...at });
      if (page.next) c.header("X-Next-Cursor", encodeCursor("after", page.next));
      return c.json(page.items, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/machines",
      summary: "Register a machine",
      request: body(MachineCreateSchema),
      responses: { 201: json(Machine, "registered"), ...errors(400, 401, 409, 413, 415) },
    }),
    async (c) => c.json(await machines.register(c.req.valid("json"), { by: "api" }), 201),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/machines/{mac}",
      summary: "A machine with its recent history",
      request: { params: MacParam },
      responses: {
        200: json(Machine.extend({ history: z.array(z.unknown()) }), "the machine"),
        ...errors(400, 401, 404),
      },
    }),
    async (c) => {
      const mac = macOf(c.req.valid("param").mac);
      const m = store.machines.require(mac);
      return c.json({ ...m, history: await store.events.listOrLocal({ mac, limit: 200 }) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "patch",
      path: "/machines/{mac}",
      summary: "Change a machine (null clears a field)",
      request: { params: MacParam, ...body(MachineUpdateSchema) },
      responses: { 200: json(Machine, "updated"), ...errors(400, 401, 404, 409, 413, 415) },
    }),
    async (c) =>
      c.json(await machines.update(macOf(c.req.valid("param").mac), c.req.valid("json"), { by: "api" }), 200),
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/machines/{mac}",
      summary: "Delete a machine record",
      request: { params: MacParam },
      responses: { 204: { description: "deleted" }, ...errors(400, 401, 404) },
    }),
    async (c) => {
      await machines.remove(macOf(c.req.valid("param").mac), "delete", { by: "api" });
      return c.body(null, 204);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/machines/{mac}/reinstall",
      summary: "Put an installed, running or failed machine back in line: its next network boot installs again",
      request: { params: MacParam },
      responses: { 200: json(Machine, "now ready"), ...errors(400, 401, 404, 409) },
    }),
    async (c) => c.json(await machines.reinstall(macOf(c.req.valid("param").mac), { by: "api" }), 200),
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/machines/{mac}/forget",
      summary: "Delete a machine; its next boot finds it as a new, discovered machine",
      request: { params: MacParam },
      responses: { 204: { description: "forgotten" }, ...errors(400, 401, 404) },
    }),
    async (c) => {
      await machines.remove(macOf(c.req.valid("param").mac), "forget", { by: "api" });
      return c.body(null, 204);
    },
  );
}
