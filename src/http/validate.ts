import type { Context } from "hono";
import type { z } from "zod";
import { fromZod, ValidationError } from "./errors.ts";

/** Reads a JSON body and validates it; a 400 names the failing field. */
export async function parseBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.output<S>> {
  let body: unknown;
  try {
    body = await c.req.json();
  } catch {
    throw new ValidationError("(body)", "(body): not valid JSON", [{ field: "(body)", message: "not valid JSON" }]);
  }
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw fromZod(parsed.error);
  return parsed.data;
}

export function parseQuery<S extends z.ZodType>(c: Context, schema: S): z.output<S> {
  const parsed = schema.safeParse(c.req.query());
  if (!parsed.success) throw fromZod(parsed.error, "query");
  return parsed.data;
}

/** Path parameters such as `:mac` go through the same schemas as bodies. */
export function parseParam<S extends z.ZodType>(value: string | undefined, schema: S, name: string): z.output<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw fromZod(parsed.error, name);
  return parsed.data;
}
