import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { GroupBodySchema, GroupCreateSchema } from "../../model/group.ts";
import { NameSchema } from "../../model/mac.ts";
import type { Store } from "../../store/index.ts";
import { fromZod, ValidationError } from "../errors.ts";
import { body, errors, json } from "./common.ts";

const NameParam = z.object({ name: z.string().openapi({ param: { name: "name", in: "path" }, example: "rack-a" }) });
const Group = GroupCreateSchema.extend({ createdAt: z.string(), updatedAt: z.string() }).meta({ id: "Group" });

export function registerGroups(app: OpenAPIHono, store: Store, onAssign: (profile: string) => void): void {
  const nameOf = (raw: string) => {
    const r = NameSchema.safeParse(raw);
    if (!r.success) throw fromZod(r.error, "name");
    return r.data;
  };
  const profileMustExist = (name: string) => {
    if (!store.profiles.get(name))
      throw new ValidationError("profile", `profile: no profile named ${name}`, [
        { field: "profile", message: "unknown profile" },
      ]);
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
    (c) => {
      const g = c.req.valid("json");
      profileMustExist(g.profile);
      const created = store.groups.create(g);
      store.events.append({ kind: "group.created", detail: { name: g.name } });
      onAssign(g.profile);
      return c.json(created, 201);
    },
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
    (c) => {
      const name = nameOf(c.req.valid("param").name);
      const g = { name, ...c.req.valid("json") };
      profileMustExist(g.profile);
      const existed = store.groups.get(name) !== undefined;
      const saved = store.groups.put(g);
      store.events.append({ kind: existed ? "group.updated" : "group.created", detail: { name } });
      onAssign(g.profile);
      return c.json(saved, existed ? 200 : 201);
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
    (c) => {
      const name = nameOf(c.req.valid("param").name);
      store.groups.delete(name);
      store.events.append({ kind: "group.deleted", detail: { name } });
      return c.body(null, 204);
    },
  );
}
