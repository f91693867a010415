import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { EventSchema } from "../../model/event.ts";
import { MacSchema } from "../../model/mac.ts";
import type { Store } from "../../store/index.ts";
import { errors, json } from "./common.ts";

export function registerEvents(app: OpenAPIHono, store: Store): void {
  app.openapi(
    createRoute({
      method: "get",
      path: "/events",
      summary: "Boot and audit events, newest first",
      request: {
        query: z.object({
          mac: MacSchema.optional(),
          kind: z.string().optional(),
          after: z.coerce
            .number()
            .int()
            .min(0)
            .optional()
            .openapi({ description: "only events with a larger id (poll for new ones)" }),
          before: z.coerce
            .number()
            .int()
            .min(1)
            .optional()
            .openapi({ description: "only events with a smaller id: the next page back is before=<last id>" }),
          limit: z.coerce
            .number()
            .int()
            .min(1)
            .max(10_000)
            .optional()
            .openapi({ description: "page size (default 100, at most 10000)" }),
        }),
      },
      responses: { 200: json(z.array(EventSchema.meta({ id: "Event" })), "events"), ...errors(400, 401) },
    }),
    async (c) => c.json(await store.events.list(c.req.valid("query")), 200),
  );
}
