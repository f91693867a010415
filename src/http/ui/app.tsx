import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { type Context, Hono } from "hono";
import type { IgnitionConfigs } from "../../boot/configs.ts";
import type { Machines } from "../../boot/machines.ts";
import type { BootService } from "../../boot/service.ts";
import type { Mirror } from "../../flatcar/mirror.ts";
import { ReleaseRequestSchema } from "../../flatcar/release.ts";
import type { CoalescedLog } from "../../limits/coalesce.ts";
import { InvalidFieldError } from "../../model/errors.ts";
import { normalizeMac } from "../../model/identity.ts";
import { MachineStateSchema, MachineUpdateSchema } from "../../model/machine.ts";
import type { Power } from "../../power/start.ts";
import { ConflictError, NotFoundError } from "../../store/errors.ts";
import type { Store } from "../../store/index.ts";
import type { MachineQuery, PagePosition } from "../../store/machines.ts";
import type { SessionStore } from "../../store/sessions.ts";
import { decodeCursor, encodeCursor } from "../cursor.ts";
import { clientIp } from "../routes/boot.ts";
import { maskIgnition, metadataStrings } from "./mask.ts";
import { AssetsPage, MirrorSection } from "./pages/assets.tsx";
import { DiscoveredPage } from "./pages/discovered.tsx";
import { LoginPage } from "./pages/login.tsx";
import { MachinePage, type Preview } from "./pages/machine.tsx";
import { type MachineFilter, MachineRows, MachinesPage, query } from "./pages/machines.tsx";
import { ProfilesPage } from "./pages/profiles.tsx";
import { powerUi } from "./power.tsx";
import { databaseUnavailable, flashRedirect, formOf, Sessions, takeFlash } from "./session.ts";
import { addressesOf, bootStory } from "./timeline.ts";
import { machineView, releaseOf } from "./view.ts";

export interface UiDeps {
  store: Store;
  boot: BootService;
  configs: IgnitionConfigs;
  machines: Machines;
  /** Out-of-band power: the console's power page and a machine's power section. */
  power: Power;
  mirror: Mirror;
  apiToken: string;
  /** Where console sessions live: the node's SQLite file, or PostgreSQL shared by every node. */
  sessions: SessionStore;
  /** Counts refused logins (anyone who reaches the console can try). */
  coalesced: CoalescedLog;
}

/** Machines per console page: the console never renders more than this many rows. */
const UI_PAGE = 100;

const require = createRequire(import.meta.url);
// Read once: both are small, and the console must work with no internet (no CDN).
const STATIC: Record<string, { body: string; type: string }> = {
  "htmx.min.js": {
    body: readFileSync(require.resolve("htmx.org/dist/htmx.min.js"), "utf8"),
    type: "text/javascript; charset=utf-8",
  },
  "ui.css": {
    body: readFileSync(new URL("./static/ui.css", import.meta.url), "utf8"),
    type: "text/css; charset=utf-8",
  },
};

/** Where a form may send the browser back to: only console pages. */
const backTo = (raw: unknown, fallback: string) =>
  typeof raw === "string" && /^\/ui\/[A-Za-z0-9/:._-]*$/.test(raw) ? raw : fallback;

/** The operator console at /ui: server-rendered pages, plain forms (POST-redirect-GET with a flash message), htmx polling for live tables. */
export function uiApp(deps: UiDeps): Hono {
  const { store, boot, mirror, machines } = deps;
  const sessions = new Sessions(deps.apiToken, deps.sessions);
  const app = new Hono();

  app.get("/static/:file", (c) => {
    const f = STATIC[c.req.param("file")];
    if (!f) return c.text("not found", 404);
    return c.body(f.body, 200, { "Content-Type": f.type, "Cache-Control": "public, max-age=3600" });
  });
  app.get("/login", (c) => c.html(<LoginPage />));
  app.post("/login", async (c) => {
    const form = await formOf(c);
    if (!form) return c.text("the form data could not be read", 400);
    const login = typeof form.token === "string" ? await sessions.login(c, form.token) : "refused";
    if (login === "unavailable") return databaseUnavailable(c);
    if (login === "ok") {
      c.get("log").info("console login");
      return c.redirect("/ui/machines", 303);
    }
    const ip = clientIp(c);
    deps.coalesced.record({
      kind: "console.login-refused",
      client: ip,
      reason: "wrong token",
      detail: { ip },
      message: "console login refused",
      level: "warn",
    });
    return c.html(<LoginPage flash={{ kind: "error", text: "That is not the API token." }} />, 401);
  });

  app.use("*", sessions.guard());

  app.post("/logout", async (c) => {
    await sessions.logout(c);
    return c.redirect("/ui/login", 303);
  });
  app.get("/", (c) => c.redirect("/ui/machines", 303));
  app.route("/", powerUi(store, deps.power));

  const filterOf = (c: Context): MachineFilter => {
    const state = MachineStateSchema.safeParse(c.req.query("state"));
    return {
      state: state.success ? state.data : undefined,
      profile: c.req.query("profile") || undefined,
      q: c.req.query("q")?.trim().slice(0, 256) || undefined,
      cursor: c.req.query("cursor") || undefined,
    };
  };
  /**
   * One page of machines. A cursor that is not ours (edited by hand), or one past the end (its machines were
   * assigned or forgotten since), shows the first page.
   */
  const pageOf = (q: MachineQuery, cursor: string | undefined, order: "mac" | "newest") => {
    let at = {};
    try {
      at = cursor ? decodeCursor(cursor) : {};
    } catch {
      // the first page
    }
    const page = store.machines.page(q, { limit: UI_PAGE, order, ...at });
    return page.items.length > 0 || !cursor ? page : store.machines.page(q, { limit: UI_PAGE, order });
  };
  const rowsFor = (f: MachineFilter) => {
    const page = pageOf(
      {
        ...(f.state ? { state: MachineStateSchema.parse(f.state) } : {}),
        ...(f.profile ? { profile: f.profile } : {}),
        ...(f.q ? { search: f.q } : {}),
      },
      f.cursor,
      "mac",
    );
    const link = (dir: "after" | "before", at: PagePosition | undefined) =>
      at && `/ui/machines?${query({ ...f, cursor: encodeCursor(dir, at) })}`;
    return {
      rows: page.items.map((m) => machineView(m, boot, mirror)),
      prev: link("before", page.prev),
      next: link("after", page.next),
    };
  };

  app.get("/machines", (c) => {
    const filter = filterOf(c);
    const { rows, prev, next } = rowsFor(filter);
    return c.html(
      <MachinesPage
        csrf={c.get("session").csrf}
        flash={takeFlash(c)}
        rows={rows}
        filter={filter}
        profiles={store.profiles.list()}
        counts={store.machines.countByState()}
        prev={prev}
        next={next}
      />,
    );
  });
  app.get("/machines/rows", (c) => {
    const filter = filterOf(c);
    return c.html(<MachineRows rows={rowsFor(filter).rows} filter={filter} />);
  });

  app.get("/discovered", (c) => {
    const page = pageOf({ state: "discovered" }, c.req.query("cursor"), "newest");
    const link = (dir: "after" | "before", at: PagePosition | undefined) =>
      at && `/ui/discovered?cursor=${encodeCursor(dir, at)}`;
    return c.html(
      <DiscoveredPage
        csrf={c.get("session").csrf}
        flash={takeFlash(c)}
        machines={page.items}
        profiles={store.profiles.list()}
        prev={link("before", page.prev)}
        next={link("after", page.next)}
      />,
    );
  });

  app.get("/machines/:mac", async (c) => {
    const mac = normalizeMac(c.req.param("mac"));
    const m = mac ? store.machines.get(mac) : undefined;
    if (!m) return flashRedirect(c, "/ui/machines", { kind: "error", text: `No machine ${c.req.param("mac")}.` });
    const own = await store.events.listOrLocal({ mac: m.mac, limit: 500 });
    const ips = addressesOf(own, m.ip);
    // TFTP knows addresses, not MACs: take the transfers from addresses this machine used since it was first seen.
    const since = m.firstSeen ?? m.createdAt;
    const transfers = await Promise.all(
      ["tftp.transfer", "tftp.failed", "tftp.aborted"].map((kind) => store.events.listOrLocal({ kind, limit: 500 })),
    );
    const tftp = transfers
      .flat()
      .filter((e) => e.at >= since && typeof e.detail.ip === "string" && ips.has(e.detail.ip));
    const { groupMetadata, profile } = boot.resolve(m);
    const secrets = metadataStrings(m.metadata, groupMetadata);
    const previews: Preview[] = (profile?.install ? (["boot", "final"] as const) : (["boot"] as const)).map((stage) => {
      const a = deps.configs.forMachine(m, stage);
      return a.ok
        ? { stage, ok: true, text: JSON.stringify(maskIgnition(a.config, secrets), null, 2) }
        : { stage, ok: false, text: a.reason };
    });
    return c.html(
      <MachinePage
        csrf={c.get("session").csrf}
        flash={takeFlash(c)}
        view={machineView(m, boot, mirror)}
        story={bootStory([...own, ...tftp])}
        previews={previews}
        profiles={store.profiles.list()}
      />,
    );
  });

  /** Profile (and hostname, when given) for one machine; returns what went wrong, in words, or nothing. */
  const assign = async (mac: string, profile: unknown, hostname: unknown): Promise<string | undefined> => {
    const patch = MachineUpdateSchema.safeParse({
      profile: profile || undefined,
      ...(typeof hostname === "string" && hostname.trim() ? { hostname: hostname.trim() } : {}),
    });
    if (!patch.success) return patch.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    if (!patch.data.profile) return "choose a profile";
    try {
      await machines.update(mac, patch.data, { by: "ui" });
    } catch (err) {
      if (err instanceof InvalidFieldError || err instanceof NotFoundError || err instanceof ConflictError)
        return err.message;
      throw err;
    }
    return undefined;
  };

  app.post("/machines/:mac/assign", async (c) => {
    const form = (await formOf(c)) ?? {};
    const mac = normalizeMac(c.req.param("mac")) ?? c.req.param("mac");
    const back = backTo(form.back, `/ui/machines/${mac}`);
    const error = await assign(mac, form.profile, form.hostname);
    if (error)
      return flashRedirect(c, back, { kind: "error", text: error.startsWith(mac) ? error : `${mac}: ${error}` });
    return flashRedirect(c, back, { kind: "ok", text: `${mac} now boots profile ${form.profile}.` });
  });

  app.post("/discovered/assign", async (c) => {
    const form = (await formOf(c)) ?? {};
    const macs = ([] as unknown[]).concat(form.mac ?? []).filter((m): m is string => typeof m === "string");
    if (macs.length === 0)
      return flashRedirect(c, "/ui/discovered", { kind: "error", text: "Tick at least one machine." });
    const failures: string[] = [];
    for (const raw of macs) {
      const mac = normalizeMac(raw) ?? raw;
      const error = await assign(mac, form.profile, undefined);
      if (error) failures.push(error.startsWith(mac) ? error : `${mac}: ${error}`);
    }
    const done = macs.length - failures.length;
    if (failures.length > 0)
      return flashRedirect(c, "/ui/discovered", {
        kind: "error",
        text: `Assigned ${done} of ${macs.length}. ${failures.join("; ")}`,
      });
    return flashRedirect(c, "/ui/discovered", {
      kind: "ok",
      text: `Assigned profile ${form.profile} to ${done} machine${done === 1 ? "" : "s"}.`,
    });
  });

  app.post("/machines/:mac/reinstall", async (c) => {
    const mac = normalizeMac(c.req.param("mac")) ?? c.req.param("mac");
    try {
      await machines.reinstall(mac, { by: "ui" });
    } catch (err) {
      if (err instanceof ConflictError || err instanceof NotFoundError)
        return flashRedirect(c, `/ui/machines/${mac}`, { kind: "error", text: `Cannot reinstall: ${err.message}` });
      throw err;
    }
    return flashRedirect(c, `/ui/machines/${mac}`, {
      kind: "ok",
      text: `${mac} will install again on its next network boot.`,
    });
  });

  app.post("/machines/:mac/forget", async (c) => {
    const mac = normalizeMac(c.req.param("mac")) ?? c.req.param("mac");
    try {
      await machines.remove(mac, "forget", { by: "ui" });
    } catch (err) {
      if (err instanceof NotFoundError)
        return flashRedirect(c, "/ui/machines", { kind: "error", text: `No machine ${mac}.` });
      throw err;
    }
    return flashRedirect(c, "/ui/machines", {
      kind: "ok",
      text: `Forgot ${mac}; its next boot shows it as discovered.`,
    });
  });

  app.get("/profiles", (c) => {
    const counts = store.machines.countByProfile();
    const rows = store.profiles.list().map((profile) => ({
      profile,
      release: releaseOf(profile, mirror),
      machines: counts.get(profile.name) ?? 0,
    }));
    return c.html(<ProfilesPage csrf={c.get("session").csrf} flash={takeFlash(c)} rows={rows} />);
  });

  app.get("/assets", async (c) =>
    c.html(
      <AssetsPage
        csrf={c.get("session").csrf}
        flash={takeFlash(c)}
        status={await mirror.list()}
        progress={mirror.progress()}
      />,
    ),
  );
  app.get("/assets/status", async (c) =>
    c.html(<MirrorSection status={await mirror.list()} progress={mirror.progress()} />),
  );
  app.post("/assets/sync", async (c) => {
    const form = (await formOf(c)) ?? {};
    const req = ReleaseRequestSchema.safeParse({ channel: form.channel, version: form.version, arch: form.arch });
    if (!req.success)
      return flashRedirect(c, "/ui/assets", {
        kind: "error",
        text: req.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "),
      });
    const r = req.data;
    mirror.sync(r).catch(() => {
      // Recorded by the mirror as a flatcar.sync.failed event and listed on this page.
    });
    return flashRedirect(c, "/ui/assets", {
      kind: "ok",
      text: `Syncing Flatcar ${r.channel} ${r.version} (${r.arch}).`,
    });
  });

  return app;
}
