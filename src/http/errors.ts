import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { z } from "zod";
import type { Logger } from "../log.ts";
import { InvalidFieldError } from "../model/errors.ts";
import { ConflictError, NotFoundError } from "../store/errors.ts";
import { DatabaseBusyError, DatabaseUnavailableError } from "../store/pg/database.ts";

/** A 400 that names the failing field; the API's zod hook and handlers raise it. */
export class ValidationError extends Error {
  override name = "ValidationError";
  constructor(
    readonly field: string,
    message: string,
    readonly issues: { field: string; message: string }[],
  ) {
    super(message);
  }
}

export function fromZod(error: z.ZodError, prefix = ""): ValidationError {
  const issues = error.issues.map((i) => ({
    field: [prefix, ...i.path.map(String)].filter(Boolean).join(".") || "(body)",
    message: i.message,
  }));
  const first = issues[0]!;
  return new ValidationError(first.field, `${first.field}: ${first.message}`, issues);
}

/** Maps domain errors to statuses; anything unexpected is a logged 500 without internals in the body. */
export function errorResponse(err: Error, c: Context, log: Logger): Response {
  if (err instanceof ValidationError) return c.json({ error: err.message, field: err.field, issues: err.issues }, 400);
  if (err instanceof InvalidFieldError)
    return c.json({ error: err.message, field: err.field, issues: [{ field: err.field, message: err.reason }] }, 400);
  if (err instanceof NotFoundError) return c.json({ error: err.message }, 404);
  if (err instanceof ConflictError) return c.json({ error: err.message, ...err.detail }, 409);
  // The shared database is away or saturated: nothing was written; the caller may retry.
  if (err instanceof DatabaseUnavailableError || err instanceof DatabaseBusyError) {
    log.warn({ err: err.message, path: c.req.path }, "request refused: database unavailable");
    c.header("Retry-After", "5");
    return c.json({ error: err.message }, 503);
  }
  if (err instanceof HTTPException) {
    // The framework's own refusals (body not JSON, wrong media type) answer in the API's JSON shape too.
    if (err.status === 415)
      return c.json({ error: "Content-Type must be application/json", field: "content-type" }, 415);
    if (err.status === 400) return c.json({ error: err.message || "bad request", field: "(body)" }, 400);
    return err.getResponse();
  }
  log.error({ err, path: c.req.path }, "request failed");
  return c.json({ error: "internal error" }, 500);
}
