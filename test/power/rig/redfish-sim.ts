import { randomBytes, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";

/** DMTF ResetType values this simulated system offers. */
export const RESET_TYPES = [
  "On",
  "ForceOff",
  "GracefulShutdown",
  "ForceRestart",
  "GracefulRestart",
  "PowerCycle",
] as const;
export type ResetType = (typeof RESET_TYPES)[number];

/** What the BMC drives: a QEMU guest over QMP (e2e) or a chassis kept in memory (driver tests). */
export interface Chassis {
  powerState(): "On" | "Off";
  reset(type: ResetType): Promise<void>;
}

/** A chassis with nothing behind it but its power state, for tests of the Redfish client itself. */
export class VirtualChassis implements Chassis {
  state: "On" | "Off" = "Off";
  readonly resets: ResetType[] = [];
  powerState() {
    return this.state;
  }
  async reset(type: ResetType) {
    this.resets.push(type);
    this.state = type === "ForceOff" || type === "GracefulShutdown" ? "Off" : "On";
  }
}

const BOOT_TARGETS = ["None", "Pxe", "Hdd", "Cd", "Usb", "BiosSetup", "UefiShell"];
const BOOT_ENABLED = ["Disabled", "Once", "Continuous"];
const BOOT_MODES = ["Legacy", "UEFI"];

export interface RedfishSimOptions {
  username: string;
  password: string;
  cert: string;
  key: string;
  chassis: Chassis;
  /** Never answers requests (a BMC that accepts TCP and TLS, then hangs). */
  hang?: boolean;
}

interface Boot {
  BootSourceOverrideTarget: string;
  BootSourceOverrideEnabled: string;
  BootSourceOverrideMode: string;
}

/**
 * A Redfish service (DSP0266) over HTTPS with the resources a power driver uses: ServiceRoot, the Systems
 * collection, one ComputerSystem with PowerState and Boot (override target/enabled/mode, PATCHable), the
 * ComputerSystem.Reset action, and SessionService with its Sessions collection (X-Auth-Token sessions) beside
 * HTTP Basic. A `Once` override is consumed by the next power-on or restart, as a BMC does.
 */
export class RedfishSim {
  private server: Server | undefined;
  private readonly sessions = new Map<string, string>(); // token → session id
  private nextSession = 1;
  boot: Boot = {
    BootSourceOverrideTarget: "None",
    BootSourceOverrideEnabled: "Disabled",
    BootSourceOverrideMode: "Legacy",
  };
  /** The override each power-on/restart used (what the firmware was told to boot). */
  readonly bootsUsed: Boot[] = [];
  /** Every request: method, path and how it authenticated (never the secret). */
  readonly log: { method: string; path: string; auth: "none" | "basic" | "session" | "bad" }[] = [];

  constructor(private readonly o: RedfishSimOptions) {}

  async listen(host = "127.0.0.1", port = 0): Promise<number> {
    this.server = createServer({ cert: this.o.cert, key: this.o.key }, (req, res) => {
      if (this.o.hang) return; // the socket stays open, nothing is ever written
      void this.handle(req, res).catch((err) => send(res, 500, error("Base.1.0.InternalError", String(err))));
    });
    await new Promise<void>((r) => this.server!.listen(port, host, r));
    return (this.server.address() as AddressInfo).port;
  }

  close(): Promise<void> {
    return new Promise((r) => {
      if (!this.server) return r();
      this.server.closeAllConnections();
      this.server.close(() => r());
    });
  }

  private authOf(req: IncomingMessage): "none" | "basic" | "session" | "bad" {
    const token = req.headers["x-auth-token"];
    if (typeof token === "string") return this.sessions.has(token) ? "session" : "bad";
    const basic = req.headers.authorization;
    if (basic?.startsWith("Basic ")) {
      const [user, ...rest] = Buffer.from(basic.slice(6), "base64").toString("utf8").split(":");
      return same(user ?? "", this.o.username) && same(rest.join(":"), this.o.password) ? "basic" : "bad";
    }
    return "none";
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? "/").split("?")[0]!.replace(/(.)\/$/, "$1");
    const method = req.method ?? "GET";
    const auth = this.authOf(req);
    this.log.push({ method, path, auth });
    const body = await readJson(req);
    if (body === INVALID) return send(res, 400, error("Base.1.0.MalformedJSON", "the request body is not JSON"));

    // Readable without credentials (DSP0266 §13.3.2): the version document and the service root.
    if (method === "GET" && path === "/redfish") return send(res, 200, { v1: "/redfish/v1/" });
    if (method === "GET" && path === "/redfish/v1") return send(res, 200, this.serviceRoot());
    if (method === "POST" && path === "/redfish/v1/SessionService/Sessions") return this.login(res, body);

    if (auth === "none" || auth === "bad")
      return send(res, 401, error("Base.1.0.NoValidSession", "authentication required"), {
        "www-authenticate": 'Basic realm="simulated BMC"',
      });

    if (method === "GET" && path === "/redfish/v1/Systems")
      return send(res, 200, {
        "@odata.id": "/redfish/v1/Systems",
        "@odata.type": "#ComputerSystemCollection.ComputerSystemCollection",
        Name: "Computer System Collection",
        "Members@odata.count": 1,
        Members: [{ "@odata.id": "/redfish/v1/Systems/1" }],
      });
    if (method === "GET" && path === "/redfish/v1/Systems/1") return send(res, 200, this.system());
    if (method === "PATCH" && path === "/redfish/v1/Systems/1") return this.patchSystem(res, body);
    if (method === "POST" && path === "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset")
      return this.resetAction(res, body);
    if (method === "GET" && path === "/redfish/v1/SessionService")
      return send(res, 200, {
        "@odata.id": "/redfish/v1/SessionService",
        "@odata.type": "#SessionService.v1_1_8.SessionService",
        Id: "SessionService",
        Name: "Session Service",
        ServiceEnabled: true,
        SessionTimeout: 1800,
        Sessions: { "@odata.id": "/redfish/v1/SessionService/Sessions" },
      });
    if (method === "GET" && path === "/redfish/v1/SessionService/Sessions")
      return send(res, 200, {
        "@odata.id": "/redfish/v1/SessionService/Sessions",
        "@odata.type": "#SessionCollection.SessionCollection",
        Name: "Session Collection",
        "Members@odata.count": this.sessions.size,
        Members: [...this.sessions.values()].map((id) => ({
          "@odata.id": `/redfish/v1/SessionService/Sessions/${id}`,
        })),
      });
    const session = /^\/redfish\/v1\/SessionService\/Sessions\/(\d+)$/.exec(path)?.[1];
    if (session && [...this.sessions.values()].includes(session)) {
      if (method === "GET")
        return send(res, 200, {
          "@odata.id": path,
          "@odata.type": "#Session.v1_3_0.Session",
          Id: session,
          Name: "User Session",
          UserName: this.o.username,
        });
      if (method === "DELETE") {
        for (const [t, id] of this.sessions) if (id === session) this.sessions.delete(t);
        return send(res, 204, undefined);
      }
    }
    send(res, 404, error("Base.1.0.ResourceMissingAtURI", `no resource at ${path}`));
  }

  private serviceRoot() {
    return {
      "@odata.id": "/redfish/v1/",
      "@odata.type": "#ServiceRoot.v1_11_0.ServiceRoot",
      Id: "RootService",
      Name: "Kindling test BMC",
      RedfishVersion: "1.11.0",
      UUID: "92384634-2938-2342-8820-489239905423",
      Systems: { "@odata.id": "/redfish/v1/Systems" },
      SessionService: { "@odata.id": "/redfish/v1/SessionService" },
      Links: { Sessions: { "@odata.id": "/redfish/v1/SessionService/Sessions" } },
    };
  }

  private system() {
    return {
      "@odata.id": "/redfish/v1/Systems/1",
      "@odata.type": "#ComputerSystem.v1_13_0.ComputerSystem",
      Id: "1",
      Name: "Kindling e2e guest",
      SystemType: "Physical",
      PowerState: this.o.chassis.powerState(),
      Boot: {
        ...this.boot,
        "BootSourceOverrideTarget@Redfish.AllowableValues": BOOT_TARGETS,
      },
      Actions: {
        "#ComputerSystem.Reset": {
          target: "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset",
          "ResetType@Redfish.AllowableValues": RESET_TYPES,
        },
      },
    };
  }

  private login(res: ServerResponse, body: unknown): void {
    const b = body as { UserName?: unknown; Password?: unknown } | undefined;
    if (typeof b?.UserName !== "string" || typeof b.Password !== "string")
      return send(res, 400, error("Base.1.0.PropertyMissing", "UserName and Password are required"));
    if (!same(b.UserName, this.o.username) || !same(b.Password, this.o.password))
      return send(res, 401, error("Base.1.0.InvalidCredentials", "invalid credentials"));
    const id = String(this.nextSession++);
    const token = randomBytes(16).toString("hex");
    this.sessions.set(token, id);
    const location = `/redfish/v1/SessionService/Sessions/${id}`;
    send(
      res,
      201,
      {
        "@odata.id": location,
        "@odata.type": "#Session.v1_3_0.Session",
        Id: id,
        Name: "User Session",
        UserName: b.UserName,
      },
      { "x-auth-token": token, location },
    );
  }

  private patchSystem(res: ServerResponse, body: unknown): void {
    const boot = (body as { Boot?: Record<string, unknown> } | undefined)?.Boot;
    if (!boot || typeof boot !== "object") return send(res, 400, error("Base.1.0.PropertyMissing", "Boot is required"));
    const checks: [keyof Boot, string[]][] = [
      ["BootSourceOverrideTarget", BOOT_TARGETS],
      ["BootSourceOverrideEnabled", BOOT_ENABLED],
      ["BootSourceOverrideMode", BOOT_MODES],
    ];
    for (const [k] of Object.entries(boot).filter(([k]) => !checks.some(([c]) => c === k)))
      return send(res, 400, error("Base.1.0.PropertyUnknown", `Boot.${k} is not a known property`));
    for (const [k, allowed] of checks) {
      const v = boot[k];
      if (v !== undefined && (typeof v !== "string" || !allowed.includes(v)))
        return send(
          res,
          400,
          error(
            "Base.1.0.PropertyValueNotInList",
            `Boot.${k}: ${JSON.stringify(v)} is not one of ${allowed.join(", ")}`,
          ),
        );
    }
    this.boot = { ...this.boot, ...(boot as Partial<Boot>) };
    send(res, 200, this.system());
  }

  private async resetAction(res: ServerResponse, body: unknown): Promise<void> {
    const type = (body as { ResetType?: unknown } | undefined)?.ResetType;
    if (typeof type !== "string" || !(RESET_TYPES as readonly string[]).includes(type))
      return send(
        res,
        400,
        error(
          "Base.1.0.ActionParameterValueNotInList",
          `ResetType ${JSON.stringify(type)} is not one of ${RESET_TYPES.join(", ")}`,
        ),
      );
    const boots =
      type !== "ForceOff" && type !== "GracefulShutdown" && !(type === "On" && this.o.chassis.powerState() === "On");
    if (boots) {
      this.bootsUsed.push({ ...this.boot });
      if (this.boot.BootSourceOverrideEnabled === "Once")
        this.boot = { ...this.boot, BootSourceOverrideEnabled: "Disabled", BootSourceOverrideTarget: "None" };
    }
    await this.o.chassis.reset(type as ResetType);
    send(res, 204, undefined);
  }
}

const INVALID = Symbol("invalid");

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > 64 * 1024) return INVALID;
    chunks.push(c as Buffer);
  }
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    return INVALID;
  }
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = body === undefined ? "" : JSON.stringify(body);
  res.writeHead(status, {
    ...(text ? { "content-type": "application/json; charset=utf-8" } : {}),
    "odata-version": "4.0",
    "content-length": String(Buffer.byteLength(text)),
    ...headers,
  });
  res.end(text);
}

const error = (code: string, message: string) => ({
  error: { code, message, "@Message.ExtendedInfo": [{ MessageId: code, Message: message }] },
});

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
