import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { HTTPException } from "hono/http-exception";
import type { IgnitionConfigs } from "../../boot/configs.ts";
import { MacSchema, NameSchema } from "../../model/mac.ts";
import { ProfileBodySchema, type ProfileCreate, ProfileCreateSchema } from "../../model/profile.ts";
import { NotFoundError } from "../../store/errors.ts";
import type { Store } from "../../store/index.ts";
import { fromZod } from "../errors.ts";
import { body, errors, json } from "./common.ts";

const NameParam = z.object({
  name: z.string().openapi({ param: { name: "name", in: "path" }, example: "flatcar-install" }),
});
const Profile = z
  .intersection(ProfileCreateSchema, z.object({ builtin: z.boolean(), createdAt: z.string(), updatedAt: z.string() }))
  .meta({ id: "Profile" });

/** Checks a profile beyond its shape (its Ignition template compiles); throws a ValidationError naming the field. */
export type ProfileCheck = (p: ProfileCreate) => void;

export function registerProfiles(app: OpenAPIHono, store: Store, check: ProfileCheck, configs: IgnitionConfigs): void {
  const nameOf = (raw: string) => {
    const r = NameSchema.safeParse(raw);
    if (!r.success) throw fromZod(r.error, "name");
    return r.data;
  };

  app.openapi(
    createRoute({
      method: "get",
      path: "/profiles",
      summary: "List profiles",
      responses: { 200: json(z.array(Profile), "profiles, by name"), ...errors(401) },
    }),
    (c) => c.json(store.profiles.list(), 200),
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/profiles",
      summary: "Create a profile",
      request: body(ProfileCreateSchema),
      responses: { 201: json(Profile, "created"), ...errors(400, 401, 409, 413, 415) },
    }),
    async (c) => {
      const p = c.req.valid("json");
      check(p);
      const { profile } = await store.writes.putProfile(p, "create", () => [
        { kind: "profile.created", detail: { name: p.name } },
      ]);
      return c.json(profile, 201);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/profiles/{name}",
      summary: "A profile",
      request: { params: NameParam },
      responses: { 200: json(Profile, "the profile"), ...errors(400, 401, 404) },
    }),
    (c) => c.json(store.profiles.require(nameOf(c.req.valid("param").name)), 200),
  );

  app.openapi(
    createRoute({
      method: "put",
      path: "/profiles/{name}",
      summary: "Create or replace a profile",
      request: { params: NameParam, ...body(ProfileBodySchema) },
      responses: { 200: json(Profile, "replaced"), 201: json(Profile, "created"), ...errors(400, 401, 413, 415) },
    }),
    async (c) => {
      const name = nameOf(c.req.valid("param").name);
      const p = { name, ...c.req.valid("json") };
      check(p);
      const { profile, created } = await store.writes.putProfile(p, "put", ({ created }) => [
        { kind: created ? "profile.created" : "profile.updated", detail: { name } },
      ]);
      return c.json(profile, created ? 201 : 200);
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/profiles/{name}",
      summary: "Delete an unused profile",
      request: { params: NameParam },
      responses: { 204: { description: "deleted" }, ...errors(400, 401, 404, 409) },
    }),
    async (c) => {
      const name = nameOf(c.req.valid("param").name);
      await store.writes.deleteProfile(name, () => [{ kind: "profile.deleted", detail: { name } }]);
      return c.body(null, 204);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/profiles/{name}/render",
      summary:
        "Preview the Ignition this profile gives a machine (the installed system's config for install profiles unless stage=boot)",
      request: { params: NameParam, query: z.object({ mac: MacSchema, stage: z.enum(["boot", "final"]).optional() }) },
      responses: {
        200: json(
          z.object({
            profile: z.string(),
            kind: z.string(),
            spec: z.string(),
            config: z.record(z.string(), z.unknown()),
          }),
          "rendered config",
        ),
        ...errors(400, 401, 404, 500),
      },
    }),
    (c) => {
      const profile = store.profiles.require(nameOf(c.req.valid("param").name));
      const { mac, stage } = c.req.valid("query");
      const machine = store.machines.require(mac);
      const answer = configs.forMachine(machine, stage ?? (profile.install ? "final" : "boot"), profile);
      if (!answer.ok && answer.status === 404) throw new NotFoundError(answer.reason);
      // The reason (which field, which template value) is what the operator previewing needs to see.
      if (!answer.ok) throw new HTTPException(500, { res: Response.json({ error: answer.reason }, { status: 500 }) });
      return c.json({ profile: answer.profile, kind: answer.kind, spec: answer.spec, config: answer.config }, 200);
    },
  );
}
