import { Hono } from "hono";
import { normalizeIp, type RecentClients } from "../../boot/attribution.ts";
import { bootScript } from "../../boot/render.ts";
import type { BootService } from "../../boot/service.ts";
import type { Signer } from "../../boot/sign.ts";
import { normalizeMac } from "../../model/identity.ts";
import type { Store } from "../../store/index.ts";

const IPXE_TYPE = { "Content-Type": "text/plain; charset=utf-8" };

/** Routes firmware and iPXE call: no auth (firmware cannot authenticate). */
export function bootRoutes(deps: {
  boot: BootService;
  store: Store;
  signer: Signer;
  server: string;
  recent: RecentClients;
}): Hono {
  const { boot, store, signer } = deps;
  const app = new Hono();

  app.get("/boot.ipxe", (c) => c.body(bootScript(deps.server), 200, IPXE_TYPE));

  // The boot service logs and records each request (counted when repeated: anyone can send them).
  app.get("/ipxe", async (c) => {
    const ip = clientIp(c);
    const answer = store.history.reading(() => boot.ipxe(c.req.query(), ip));
    if (answer.outcome !== "too-many-new") deps.recent.note(ip, answer.mac);
    // The answer leaves once the request's history is committed (group commit: store/history-writer.ts).
    await store.history.committed();
    return c.body(answer.body, answer.status, IPXE_TYPE);
  });

  /**
   * What Kindling knows of a machine, for scripts on it. Identity fields are public (firmware sent them);
   * `metadata` may hold secrets and needs a URL signed for this machine.
   */
  app.get("/metadata", (c) => {
    const mac = normalizeMac(c.req.query("mac") ?? "");
    if (!mac) return c.json({ error: "bad or missing mac" }, 400);
    const m = store.machines.get(mac);
    if (!m) return c.json({ error: `machine ${mac} not found` }, 404);
    const signed =
      signer.verify("metadata", mac, c.req.query("exp"), c.req.query("sig"), Date.now(), c.req.query("group")) === "ok";
    const { metadata, ...identity } = m;
    return c.json(signed ? { ...identity, metadata } : identity);
  });

  return app;
}

export function clientIp(c: { env: unknown }): string | undefined {
  const ip = (c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)?.incoming?.socket
    ?.remoteAddress;
  return ip && normalizeIp(ip);
}
