import { Hono } from "hono";
import type { Metrics } from "./metrics.ts";

/** `GET /metrics`: Prometheus text exposition, open like /healthz (it names no machine). */
export function metricsRoute(metrics: Metrics): Hono {
  const app = new Hono();
  app.get("/metrics", async (c) => {
    const { contentType, body } = await metrics.exposition();
    return c.body(body, 200, { "Content-Type": contentType });
  });
  return app;
}
