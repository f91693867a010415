import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { normalizeIp } from "../../boot/attribution.ts";
import { bootScript } from "../../boot/render.ts";
import type { Logger } from "../../log.ts";
import type { Metrics } from "../../metrics/metrics.ts";
import type { IpxeAnswers } from "./ipxe-answers.ts";

/** Answers a request itself and returns true, or returns false and leaves it to the listener behind. */
export type FrontListener = (req: IncomingMessage, res: ServerResponse) => boolean;

const IPXE_TYPE = "text/plain; charset=utf-8";
/** What hono's request-id middleware keeps of a client's `X-Request-Id` (metrics/http.ts). */
const REQUEST_ID = /^[\w\-=]{1,255}$/;

/**
 * `GET /boot.ipxe` and `GET /ipxe` on `node:http` directly, in front of hono on the same port: every booting
 * machine asks both, and hono's routing, middleware and Response objects cost as much as the answer itself.
 * Everything else (other methods, other paths) goes to hono. Answers what the hono routes answer (routes/boot.ts,
 * same IpxeAnswers) with the same headers, and does what the app's middleware does for them: an `X-Request-Id`,
 * the request counted under its route, the same log lines, an unexpected error answered 500 and logged.
 */
export function bootFront(deps: { ipxe: IpxeAnswers; server: string; metrics: Metrics; log: Logger }): FrontListener {
  const { ipxe, metrics, log } = deps;
  const bootIpxe = bootScript(deps.server);

  const finish = (
    res: ServerResponse,
    route: string,
    id: string,
    started: number,
    status: number,
    type: string,
    body: string,
  ) => {
    const seconds = (performance.now() - started) / 1000;
    res.writeHead(status, { "content-type": type, "x-request-id": id, "Content-Length": Buffer.byteLength(body) });
    res.end(body);
    metrics.observeHttp("GET", route, status, seconds);
    if (status >= 500 || log.isLevelEnabled("debug")) {
      const line = { method: "GET", path: route, route, status, ms: Math.round(seconds * 1000) };
      const reqLog = log.child({ reqId: id });
      if (status >= 500) reqLog.warn(line, "http request failed");
      else reqLog.debug(line, "http request");
    }
  };

  const failed = (res: ServerResponse, route: string, id: string, started: number, err: unknown) => {
    log.error({ err, path: route }, "request failed");
    finish(res, route, id, started, 500, "application/json", JSON.stringify({ error: "internal error" }));
  };

  return (req, res) => {
    if (req.method !== "GET") return false;
    const url = req.url ?? "";
    const q = url.indexOf("?");
    const pathEnd = q === -1 ? url.length : q;
    const route =
      pathEnd === 5 && url.startsWith("/ipxe")
        ? "/ipxe"
        : pathEnd === 10 && url.startsWith("/boot.ipxe")
          ? "/boot.ipxe"
          : undefined;
    if (!route) return false;
    const started = performance.now();
    const given = req.headers["x-request-id"];
    const id = typeof given === "string" && REQUEST_ID.test(given) ? given : crypto.randomUUID();
    if (route === "/boot.ipxe") {
      finish(res, route, id, started, 200, IPXE_TYPE, bootIpxe);
      return true;
    }
    const remote = req.socket.remoteAddress;
    let answer: ReturnType<IpxeAnswers["answer"]>;
    try {
      answer = ipxe.answer(q === -1 ? "" : url.slice(q + 1), remote && normalizeIp(remote));
    } catch (err) {
      failed(res, route, id, started, err);
      return true;
    }
    answer.then(
      (a) => finish(res, route, id, started, a.status, IPXE_TYPE, a.body),
      (err) => failed(res, route, id, started, err),
    );
    return true;
  };
}

/** Puts `front` before the server's request listener (hono's node adapter): what it declines goes on there. */
export function putInFront(server: Server, front: FrontListener): void {
  const behind = server.listeners("request") as ((req: IncomingMessage, res: ServerResponse) => void)[];
  server.removeAllListeners("request");
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    if (!front(req, res)) for (const listener of behind) listener(req, res);
  });
}
