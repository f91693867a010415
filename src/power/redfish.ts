import { Agent, fetch } from "undici";
import type { BmcRecord, BootMode, PowerState } from "../model/power.ts";
import { type BmcCall, BmcError, type PowerChange, type PowerDriver } from "./driver.ts";

/** Largest Redfish answer read (a ComputerSystem is a few KiB; a hostile or broken BMC is cut off). */
const MAX_BODY = 1024 * 1024;

const RESET: Record<PowerChange, string> = {
  on: "On",
  off: "ForceOff",
  "soft-off": "GracefulShutdown",
  cycle: "PowerCycle",
  reset: "ForceRestart",
};

type Json = Record<string, unknown>;
interface Session {
  token: string;
  location: string | undefined;
}

/**
 * DMTF Redfish over HTTPS with fetch: service root → Systems → the system, then its PowerState, the
 * ComputerSystem.Reset action and the Boot override. TLS is verified against the system's CAs unless the BMC
 * names its own CA or is marked insecure. Session auth (one session per BMC, opened again on a 401) or
 * HTTP Basic.
 */
export class RedfishDriver implements PowerDriver {
  private readonly sessions = new Map<string, Session>();
  private readonly agents = new Map<string, Agent>();

  async status(call: BmcCall): Promise<{ state: PowerState; answer: string }> {
    const { body } = await this.system(call);
    const power = String(body.PowerState ?? "");
    const state: PowerState =
      power === "On" || power === "PoweringOff" ? "on" : power === "Off" || power === "PoweringOn" ? "off" : "unknown";
    return { state, answer: `PowerState ${power || "(absent)"}` };
  }

  async power(call: BmcCall, change: PowerChange): Promise<string> {
    const { path, body } = await this.system(call);
    const action = (body.Actions as Json | undefined)?.["#ComputerSystem.Reset"] as Json | undefined;
    const target = typeof action?.target === "string" ? action.target : `${path}/Actions/ComputerSystem.Reset`;
    const allowed = action?.["ResetType@Redfish.AllowableValues"];
    let type = RESET[change];
    // Not every BMC offers PowerCycle; a forced restart is the same thing to the machine.
    if (Array.isArray(allowed) && !allowed.includes(type)) {
      if (change === "cycle" && allowed.includes("ForceRestart")) type = "ForceRestart";
      else
        throw new BmcError(
          `this BMC does not offer ResetType ${type} (it offers ${allowed.join(", ")})`,
          "unsupported",
        );
    }
    const res = await this.request(call, "POST", target, { ResetType: type });
    return `Reset ${type}: HTTP ${res.status}`;
  }

  async pxeOnce(call: BmcCall, mode: BootMode | undefined): Promise<string> {
    const { path } = await this.system(call);
    const boot: Json = { BootSourceOverrideTarget: "Pxe", BootSourceOverrideEnabled: "Once" };
    if (mode) boot.BootSourceOverrideMode = mode === "uefi" ? "UEFI" : "Legacy";
    const res = await this.request(call, "PATCH", path, { Boot: boot });
    return `Boot override ${Object.values(boot).join("/")}: HTTP ${res.status}`;
  }

  /** Service root → Systems → the configured (or only) ComputerSystem. */
  private async system(call: BmcCall): Promise<{ path: string; body: Json }> {
    const root = (await this.request(call, "GET", "/redfish/v1/")).body;
    const systems = odataId(root.Systems, "ServiceRoot.Systems");
    const members = ((await this.request(call, "GET", systems)).body.Members ?? []) as unknown[];
    const ids = members.map((m) => odataId(m, "Systems.Members[]"));
    const want = call.bmc.systemId;
    const path = want
      ? ids.find((id) => id.replace(/\/$/, "").endsWith(`/${want}`))
      : ids.length === 1
        ? ids[0]
        : undefined;
    if (!path)
      throw new BmcError(
        want
          ? `no system ${want} on this BMC (it has ${ids.join(", ") || "none"})`
          : `this BMC has ${ids.length} systems (${ids.join(", ")}): set systemId`,
        "protocol",
      );
    return { path, body: (await this.request(call, "GET", path)).body };
  }

  private async request(
    call: BmcCall,
    method: string,
    path: string,
    body?: Json,
    retried = false,
  ): Promise<{ status: number; body: Json }> {
    const { bmc } = call;
    const headers: Record<string, string> = { accept: "application/json", "odata-version": "4.0" };
    if (body) headers["content-type"] = "application/json";
    if (bmc.auth === "basic")
      headers.authorization = `Basic ${Buffer.from(`${bmc.username}:${call.password}`).toString("base64")}`;
    else headers["x-auth-token"] = (await this.session(call)).token;
    const res = await this.send(call, method, path, headers, body);
    if (res.status === 401 && bmc.auth !== "basic" && !retried) {
      this.sessions.delete(sessionKey(bmc));
      return this.request(call, method, path, body, true);
    }
    return { status: res.status, body: checked(res, method, path) };
  }

  private async session(call: BmcCall): Promise<Session> {
    const key = sessionKey(call.bmc);
    const known = this.sessions.get(key);
    if (known) return known;
    // The service root is readable without auth (DSP0266); it names the session collection.
    const root = checked(
      await this.send(call, "GET", "/redfish/v1/", { accept: "application/json" }),
      "GET",
      "/redfish/v1/",
    );
    const sessions = odataId((root.Links as Json | undefined)?.Sessions, "ServiceRoot.Links.Sessions");
    const res = await this.send(
      call,
      "POST",
      sessions,
      { accept: "application/json", "content-type": "application/json" },
      { UserName: call.bmc.username, Password: call.password },
    );
    if (res.status === 401 || res.status === 403)
      throw new BmcError(`Redfish BMC ${call.bmc.address} refused the credentials (HTTP ${res.status})`, "auth");
    checked(res, "POST", sessions);
    const token = res.headers.get("x-auth-token");
    if (!token) throw new BmcError("Redfish session created without an X-Auth-Token", "protocol");
    const session = { token, location: res.headers.get("location") ?? undefined };
    for (const k of this.sessions.keys()) if (k.startsWith(`${call.bmc.mac}\n`)) this.sessions.delete(k);
    this.sessions.set(key, session);
    return session;
  }

  private async send(
    call: BmcCall,
    method: string,
    path: string,
    headers: Record<string, string>,
    body?: Json,
  ): Promise<{ status: number; headers: Headers; text: string }> {
    const { bmc } = call;
    const base = new URL(`https://${bmc.address.includes(":") ? `[${bmc.address}]` : bmc.address}:${bmc.port}`);
    const url = new URL(path, base);
    if (url.host !== base.host) throw new BmcError(`Redfish link ${path} leaves the BMC`, "protocol");
    try {
      const res = await fetch(url, {
        method,
        headers,
        ...(body ? { body: JSON.stringify(body) } : {}),
        signal: call.signal,
        dispatcher: this.agent(bmc),
        redirect: "error",
      });
      const text = await readCapped(res);
      return { status: res.status, headers: res.headers as unknown as Headers, text };
    } catch (err) {
      if (call.signal.aborted)
        throw new BmcError(
          `no answer from Redfish BMC ${bmc.address}:${bmc.port} within ${call.timeoutMs / 1000} s`,
          "timeout",
        );
      if (err instanceof BmcError) throw err;
      const cause = (err as Error & { cause?: Error & { code?: string } }).cause;
      throw new BmcError(
        `Redfish BMC ${bmc.address}:${bmc.port}: ${cause?.message ?? (err as Error).message}${cause?.code ? ` (${cause.code})` : ""}`,
        "unreachable",
      );
    }
  }

  private agent(bmc: BmcRecord): Agent {
    const key = `${bmc.mac}\n${bmc.insecure === true}\n${bmc.caCert ?? ""}`;
    let agent = this.agents.get(key);
    if (!agent) {
      for (const [k, a] of this.agents)
        if (k.startsWith(`${bmc.mac}\n`)) {
          void a.close();
          this.agents.delete(k);
        }
      agent = new Agent({
        connect: {
          rejectUnauthorized: bmc.insecure !== true,
          ...(bmc.caCert ? { ca: bmc.caCert } : {}),
        },
        connections: 1,
      });
      this.agents.set(key, agent);
    }
    return agent;
  }

  async close(): Promise<void> {
    await Promise.all([...this.agents.values()].map((a) => a.close()));
    this.agents.clear();
  }
}

/** A changed BMC record (new address, user or password) opens a new session. */
const sessionKey = (b: BmcRecord) => `${b.mac}\n${b.address}:${b.port}\n${b.username}\n${b.updatedAt}`;

function odataId(link: unknown, what: string): string {
  const id = (link as Json | undefined)?.["@odata.id"];
  if (typeof id !== "string" || !id.startsWith("/")) throw new BmcError(`Redfish answer lacks ${what}`, "protocol");
  return id;
}

function checked(res: { status: number; text: string }, method: string, path: string): Json {
  if (res.status === 401 || res.status === 403)
    throw new BmcError(`Redfish ${method} ${path}: HTTP ${res.status} (credentials refused)`, "auth");
  if (res.status >= 400) {
    let message = res.text.slice(0, 300);
    try {
      const err = (JSON.parse(res.text) as { error?: { message?: string } }).error;
      if (err?.message) message = err.message;
    } catch {
      // not JSON: keep the text
    }
    throw new BmcError(`Redfish ${method} ${path}: HTTP ${res.status} ${message}`, "refused");
  }
  if (!res.text) return {};
  try {
    return JSON.parse(res.text) as Json;
  } catch {
    throw new BmcError(`Redfish ${method} ${path}: answer is not JSON`, "protocol");
  }
}

async function readCapped(res: { body: ReadableStream<Uint8Array> | null }): Promise<string> {
  if (!res.body) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new BmcError(`Redfish answer larger than ${MAX_BODY} bytes`, "protocol");
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}
