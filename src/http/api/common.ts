import { OpenAPIHono, z } from "@hono/zod-openapi";
import { MacSchema } from "../../model/mac.ts";
import { fromZod, ValidationError } from "../errors.ts";

/** JSON error body every API failure uses; `field` names the failing input on a 400. */
export const ErrorSchema = z.object({ error: z.string(), field: z.string().optional() }).meta({ id: "Error" });

export const errors = (...codes: (400 | 401 | 404 | 409 | 413 | 415 | 500)[]) =>
  Object.fromEntries(
    codes.map((code) => [
      code,
      {
        description: {
          400: "invalid input",
          401: "missing or bad token",
          404: "not found",
          409: "conflict",
          413: "request body larger than http.bodyLimit",
          415: "body is not application/json (field: content-type)",
          500: "server error",
        }[code],
        content: { "application/json": { schema: ErrorSchema } },
      },
    ]),
  );

export const json = <S extends z.ZodType>(schema: S, description: string) => ({
  description,
  content: { "application/json": { schema } },
});
export const body = <S extends z.ZodType>(schema: S) => ({
  body: { content: { "application/json": { schema } }, required: true },
});

/** An OpenAPIHono whose validation failures are Kindling's 400 (thrown, so the app's error handler shapes it). */
export function apiApp(): OpenAPIHono {
  return new OpenAPIHono({
    defaultHook: (result) => {
      if (!result.success)
        throw fromZod(
          result.error as z.ZodError,
          result.target === "json" ? "" : result.target === "query" ? "query" : "",
        );
    },
  });
}

/** A `{mac}` path parameter in any notation, normalised; a 400 naming `mac` otherwise. */
export function macOf(raw: string): string {
  const r = MacSchema.safeParse(raw);
  if (!r.success)
    throw new ValidationError("mac", `mac: not a MAC address: ${JSON.stringify(raw)}`, [
      { field: "mac", message: "not a MAC address" },
    ]);
  return r.data;
}
