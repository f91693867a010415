import { Hono } from "hono";
import { normalizeIp } from "../../boot/attribution.ts";
import { bootScript } from "../../boot/render.ts";
import type { Signer } from "../../boot/sign.ts";
import { normalizeMac } from "../../model/identity.ts";
import type { Store } from "../../store/index.ts";
import type { IpxeAnswers } from "../fast/ipxe-answers.ts";

const IPXE_TYPE = { "Content-Type": "text/plain; charset=utf-8" };

/**
 * Routes firmware and iPXE call: no auth (firmware cannot authenticate). `GET /boot.ipxe` and `GET /ipxe`
 * normally never get here: the front listener (fast/front.ts) answers them on `node:http` with the same
 * IpxeAnswers; these routes answer `HEAD` and requests made through `app.request`.
 */
export function bootRoutes(deps: { ipxe: IpxeAnswers; store: Store; signer: Signer; server: string }): Hono {
  const { store, signer } = deps;
  const app = new Hono();

  app.get("/boot.ipxe", (c) => c.body(bootScript(deps.server), 200, IPXE_TYPE));

  // Recorded in the machine's history (counted when repeated: anyone can send them) and committed before
  // the answer leaves (group commit: store/history-writer.ts).
  app.get("/ipxe", async (c) => {
    const url = c.req.url;
    const q = url.indexOf("?");
    const answer = await deps.ipxe.answer(q === -1 ? "" : url.slice(q + 1), clientIp(c));
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
