import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { RecentClients } from "../boot/attribution.ts";
import type { IgnitionConfigs } from "../boot/configs.ts";
import type { Machines } from "../boot/machines.ts";
import type { BootService } from "../boot/service.ts";
import type { Signer } from "../boot/sign.ts";
import { ASSETS_URL } from "../files/assets.ts";
import type { Mirror } from "../flatcar/mirror.ts";
import type { CoalescedLog } from "../limits/coalesce.ts";
import type { Logger } from "../log.ts";
import { observeHttp } from "../metrics/http.ts";
import type { Metrics } from "../metrics/metrics.ts";
import { metricsRoute } from "../metrics/route.ts";
import type { Power } from "../power/start.ts";
import type { Store } from "../store/index.ts";
import type { SessionStore } from "../store/sessions.ts";
import { apiApp } from "./api/common.ts";
import { registerEvents } from "./api/events.ts";
import { registerGroups } from "./api/groups.ts";
import { registerMachines } from "./api/machines.ts";
import { registerPower } from "./api/power.ts";
import { checkProfile } from "./api/profile-check.ts";
import { registerProfiles } from "./api/profiles.ts";
import { bearerAuth } from "./auth.ts";
import { errorResponse } from "./errors.ts";
import { bootFront, type FrontListener } from "./fast/front.ts";
import { IpxeAnswers } from "./fast/ipxe-answers.ts";
import { registerAssets } from "./routes/assets-api.ts";
import { bootRoutes } from "./routes/boot.ts";
import { fileRoutes, type Served } from "./routes/files.ts";
import { type DatabaseHealth, healthRoutes } from "./routes/health.ts";
import { ignitionRoutes } from "./routes/ignition.ts";
import { uiApp } from "./ui/app.tsx";

export interface AppDeps {
  store: Store;
  boot: BootService;
  configs: IgnitionConfigs;
  machines: Machines;
  /** Out-of-band power (BMCs). */
  power: Power;
  mirror: Mirror;
  signer: Signer;
  log: Logger;
  /** Base URL machines reach Kindling at. */
  server: string;
  apiToken: string;
  /** Console sessions: the node's SQLite file, or PostgreSQL shared by every node. */
  sessions: SessionStore;
  metrics: Metrics;
  /** Largest request body on any route. */
  bodyLimit: number;
  /** Records what unauthenticated clients can repeat (refusals, logins, asset downloads), counting repeats. */
  coalesced: CoalescedLog;
  /** With `boot.requireLeasedIp`: the address a MAC's lease is on. */
  leasedIp: ((mac: string) => Promise<string | undefined>) | undefined;
  /** IP → MAC of recent boot clients, to put asset downloads into a machine's boot story. */
  recent: RecentClients;
  /** Roots of `/assets/*` and `/ipxe-bin/*`. */
  assetsRoots: () => readonly string[];
  ipxeBinRoots: () => readonly string[];
  /** What /healthz probes; default: the SQLite file of `store`. */
  database?: DatabaseHealth;
}

/** The hono app, and the listener that answers the boot scripts in front of it (fast/front.ts). */
export type KindlingApp = Hono & { front: FrontListener };

/** Composes the boot routes (open), signed per-machine routes, the static trees (open), the API (bearer token) and the console. */
export function createApp(deps: AppDeps): KindlingApp {
  const { log } = deps;
  const app = new Hono();
  const ipxe = new IpxeAnswers(deps);
  app.onError((err, c) => errorResponse(err, c, log));
  app.notFound((c) => c.json({ error: `no route for ${c.req.method} ${c.req.path}` }, 404));
  app.use("*", ...observeHttp(deps.metrics, log));
  // Every route, open ones included (the console login, installer reports): a body is read only up to this.
  const limitBody = bodyLimit({
    maxSize: deps.bodyLimit,
    // No `Connection: close`: that would reset the socket with the client's bytes unread, and the client
    // could lose this answer. The node adapter instead discards what is still coming (at most 500 ms or
    // 64 MiB, in constant memory) and then closes.
    onError: (c) => c.json({ error: `request body larger than ${deps.bodyLimit} bytes`, field: "(body)" }, 413),
  });
  // A GET or HEAD has no body any handler can read (fetch's Request gives it none). Asking for it anyway made
  // the node adapter build a full Request with an AbortSignal per boot request: 25 µs of CPU each, and
  // signal listeners piling up to hundreds of MB under wrk.
  app.use("*", (c, next) => (c.req.method === "GET" || c.req.method === "HEAD" ? next() : limitBody(c, next)));
  app.route("/", metricsRoute(deps.metrics));

  app.route("/", healthRoutes(deps.database ?? sqliteHealth(deps.store)));
  app.route("/", bootRoutes({ ...deps, ipxe }));
  app.route("/", ignitionRoutes(deps));
  // A whole-file GET by a known boot client (kernel, initrd, iPXE binary, install image) joins its boot story.
  const served = (s: Served) => {
    const mac = deps.recent.macOf(s.ip);
    // Counted when repeated: a host that asked /ipxe once could otherwise add a row per download.
    if (mac && s.method === "GET" && !s.partial)
      deps.coalesced.record({
        kind: "http.asset",
        client: s.ip,
        mac,
        reason: s.path,
        detail: { path: s.path, bytes: s.bytes, ip: s.ip },
        message: "boot asset served",
      });
  };
  app.route("/", fileRoutes(ASSETS_URL, deps.assetsRoots, log, served));
  app.route("/", fileRoutes("/ipxe-bin", deps.ipxeBinRoots, log, served));

  const api = apiApp();
  const auth = bearerAuth(deps.apiToken);
  api.use("*", async (c, next) => {
    // The OpenAPI document describes the API and holds no data: readable without a token, like /healthz.
    if (c.req.path.endsWith("/openapi.json")) return next();
    return auth(c, next);
  });
  registerMachines(api, deps.store, deps.machines);
  registerProfiles(api, deps.store, checkProfile, deps.configs);
  registerGroups(api, deps.store, deps.machines);
  registerEvents(api, deps.store);
  registerPower(api, deps.power);
  registerAssets(api, deps.mirror);
  api.openAPIRegistry.registerComponent("securitySchemes", "bearer", { type: "http", scheme: "bearer" });
  api.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: { title: "Kindling API", version: "1" },
    servers: [{ url: "/api/v1" }],
    security: [{ bearer: [] }],
  });
  app.route("/api/v1", api);
  app.get("/ui/", (c) => c.redirect("/ui", 308)); // a typed trailing slash still finds the console
  app.route("/ui", uiApp(deps));
  return Object.assign(app, { front: bootFront({ ipxe, server: deps.server, metrics: deps.metrics, log }) });
}

function sqliteHealth(store: Store): DatabaseHealth {
  return {
    engine: "sqlite",
    async probe() {
      const started = performance.now();
      try {
        store.ping();
        return { reachable: true, latencyMs: performance.now() - started };
      } catch (err) {
        return { reachable: false, error: (err as Error).message };
      }
    },
  };
}
