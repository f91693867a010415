import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { Machines } from "../../boot/machines.ts";
import { GroupBodySchema, GroupCreateSchema } from "../../model/group.ts";
import { NameSchema } from "../../model/mac.ts";
import type { Store } from "../../store/index.ts";
import { fromZod } from "../errors.ts";
import { body, errors, json } from "./common.ts";

const NameParam = z.object({ name: z.string().openapi({ param: { name: "name", in: "path" }, example: "rack-a" }) });
const Group = GroupCreateSchema.extend({ createdAt: z.string(), updatedAt: z.string() }).meta({ id: "Group" });

/** Reads come from the store; changes go through the machine owner (a group decides what machines boot). */
export function registerGroups(app: OpenAPIHono, store: Store, machines: Machines): void {
  const nameOf = (raw: string) => {
    const r = NameSchema.safeParse(raw);
    if (!r.success) throw fromZod(r.error, "name");
    return r.data;
  };

  app.openapi(
    createRoute({
      method: "get",
      path: "/groups",
      summary: "List groups",
      responses: { 200: json(z.array(Group), "groups, by name"), ...errors(401) },
    }),
    (c) => c.json(store.groups.list(), 200),
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/groups",
      summary: "Create a group",
      request: body(GroupCreateSchema),
      responses: { 201: json(Group, "created"), ...errors(400, 401, 409, 413, 415) },
    }),
    async (c) => c.json(await machines.createGroup(c.req.valid("json"), { by: "api" }), 201),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/groups/{name}",
      summary: "A group",
      request: { params: NameParam },
      responses: { 200: json(Group, "the group"), ...errors(400, 401, 404) },
    }),
    (c) => c.json(store.groups.require(nameOf(c.req.valid("param").name)), 200),
  );

  app.openapi(
    createRoute({
      method: "put",
      path: "/groups/{name}",
      summary: "Create or replace a group",
      request: { params: NameParam, ...body(GroupBodySchema) },
      responses: { 200: json(Group, "replaced"), 201: json(Group, "created"), ...errors(400, 401, 413, 415) },
    }),
    async (c) => {
      const name = nameOf(c.req.valid("param").name);
      const { group, created } = await machines.putGroup({ name, ...c.req.valid("json") }, { by: "api" });
      return c.json(group, created ? 201 : 200);
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/groups/{name}",
      summary: "Delete a group",
      request: { params: NameParam },
      responses: { 204: { description: "deleted" }, ...errors(400, 401, 404) },
    }),
    async (c) => {
      await machines.deleteGroup(nameOf(c.req.valid("param").name), { by: "api" });
      return c.body(null, 204);
    },
  );
}
