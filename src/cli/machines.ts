import type { Command } from "commander";
import type { Event } from "../model/event.ts";
import type { Machine } from "../model/machine.ts";
import { ApiClient, CliError } from "./client.ts";
import { registerPowerCommands, reinstallPowerCycle } from "./power.ts";
import { print, table } from "./table.ts";

type Globals = { server?: string; token?: string; dataDir?: string; json?: boolean };

/** `key=value` pairs from repeated flags. */
function pairs(list: string[] | undefined, flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list ?? []) {
    const eq = item.indexOf("=");
    if (eq < 1) throw new CliError(`--${flag} expects key=value, got ${JSON.stringify(item)}`);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}
const collect = (v: string, prev: string[] = []) => [...prev, v];

const machineRows = (ms: Machine[]) =>
  table(
    ["MAC", "HOSTNAME", "ARCH", "PROFILE", "STATE", "IP", "LAST SEEN"],
    ms.map((m) => [m.mac, m.hostname, m.arch, m.profile, m.state, m.ip, m.lastSeen]),
  );

export const eventRows = (es: Event[]) =>
  table(
    ["ID", "AT", "MAC", "KIND", "DETAIL"],
    es.map((e) => [String(e.id), e.at, e.mac, e.kind, JSON.stringify(e.detail)]),
  );

export function registerMachineCommands(program: Command): void {
  const machines = program.command("machines").description("register and inspect machines (talks to a running server)");
  const client = (cmd: Command) => new ApiClient(cmd.optsWithGlobals<Globals>());
  const json = (cmd: Command) => cmd.optsWithGlobals<Globals>().json === true;

  machines
    .command("add <mac>")
    .description("register a machine")
    .option("--profile <name>", "profile to boot")
    .option("--hostname <name>")
    .option("--uuid <uuid>")
    .option("--serial <serial>")
    .option("--arch <arch>", "amd64 or arm64")
    .option("--loader <loader>", "ipxe or grub: what PXE firmware loads first (default: the profile's, else ipxe)")
    .option("--ip <ipv4>", "address reserved for it in full DHCP mode")
    .option("--label <key=value>", "label (repeatable)", collect)
    .option("--meta <key=value>", "template metadata (repeatable)", collect)
    .action(async (mac: string, o, cmd: Command) => {
      const body = {
        mac,
        ...(o.profile && { profile: o.profile }),
        ...(o.hostname && { hostname: o.hostname }),
        ...(o.uuid && { uuid: o.uuid }),
        ...(o.serial && { serial: o.serial }),
        ...(o.arch && { arch: o.arch }),
        ...(o.loader && { loader: o.loader }),
        ...(o.ip && { ip: o.ip }),
        labels: pairs(o.label, "label"),
        metadata: pairs(o.meta, "meta"),
      };
      const m = await client(cmd).request<Machine>("POST", "/machines", body);
      print(json(cmd), m, () => `registered ${m.mac} (${m.state}${m.profile ? `, profile ${m.profile}` : ""})`);
    });

  machines
    .command("list")
    .description("list machines")
    .option("--state <state>")
    .option("--profile <name>")
    .option("--search <text>", "MAC or hostname contains")
    .option("--limit <n>", "one page of at most n machines (default: every page)")
    .option("--cursor <token>", "start where a previous --limit page ended")
    .action(async (o, cmd: Command) => {
      const api = client(cmd);
      const filter = Object.entries({ state: o.state, profile: o.profile, search: o.search }).filter(([, v]) => v) as [
        string,
        string,
      ][];
      const ms: Machine[] = [];
      let cursor: string | undefined = o.cursor;
      let next: string | undefined;
      do {
        const q = new URLSearchParams(filter);
        q.set("limit", o.limit ?? "1000"); // following every page: the largest pages
        if (cursor) q.set("cursor", cursor);
        const page = await api.page<Machine>(`/machines${q.size ? `?${q}` : ""}`);
        ms.push(...page.items);
        cursor = next = page.next;
      } while (cursor && !o.limit);
      print(json(cmd), ms, () => machineRows(ms));
      // With --limit, say how to go on (on stderr: stdout stays the table or JSON).
      if (o.limit && next) process.stderr.write(`more: --cursor ${next}\n`);
    });

  machines
    .command("show <mac>")
    .description("one machine and its recent events")
    .action(async (mac: string, _o, cmd: Command) => {
      const m = await client(cmd).request<Machine & { history: Event[] }>(
        "GET",
        `/machines/${encodeURIComponent(mac)}`,
      );
      print(json(cmd), m, () => {
        const { history, ...rest } = m;
        const fields = Object.entries(rest).map(([k, v]) => [
          k,
          typeof v === "object" && v !== null ? JSON.stringify(v) : (v as string | null),
        ]);
        return `${table(["FIELD", "VALUE"], fields)}\n\n${eventRows(history.slice(0, 20))}`;
      });
    });

  machines
    .command("assign <mac> <profile>")
    .description("set a machine's profile")
    .action(async (mac: string, profile: string, _o, cmd: Command) => {
      const m = await client(cmd).request<Machine>("PATCH", `/machines/${encodeURIComponent(mac)}`, { profile });
      print(json(cmd), m, () => `${m.mac} → profile ${m.profile} (${m.state})`);
    });

  machines
    .command("rm <mac>")
    .description("delete a machine record")
    .action(async (mac: string, _o, cmd: Command) => {
      await client(cmd).request("DELETE", `/machines/${encodeURIComponent(mac)}`);
      print(json(cmd), { deleted: mac }, () => `deleted ${mac}`);
    });

  machines
    .command("reinstall <mac>")
    .description("install again on the next network boot")
    .option("--power-cycle", "and through its BMC: next boot from the network once, then power-cycle it")
    .action(async (mac: string, o, cmd: Command) => {
      if (o.powerCycle) return reinstallPowerCycle(client(cmd), mac, json(cmd));
      const m = await client(cmd).request<Machine>("POST", `/machines/${encodeURIComponent(mac)}/reinstall`);
      print(json(cmd), m, () => `${m.mac} is ${m.state}: its next network boot installs ${m.profile}`);
    });

  machines
    .command("history <mac>")
    .description("the machine's boot story, oldest first")
    .option("--limit <n>", "how many events", "200")
    .action(async (mac: string, o, cmd: Command) => {
      const es = await client(cmd).request<Event[]>(
        "GET",
        `/events?mac=${encodeURIComponent(mac)}&limit=${encodeURIComponent(o.limit)}`,
      );
      // No events at all: an unknown MAC is an error (a forgotten machine's events are still its story).
      if (es.length === 0) await client(cmd).request("GET", `/machines/${encodeURIComponent(mac)}`);
      const story = [...es].reverse();
      print(json(cmd), story, () => eventRows(story));
    });

  registerPowerCommands(machines, client, json);

  machines
    .command("forget <mac>")
    .description("delete the machine; its next boot rediscovers it")
    .action(async (mac: string, _o, cmd: Command) => {
      await client(cmd).request("POST", `/machines/${encodeURIComponent(mac)}/forget`);
      print(json(cmd), { forgotten: mac }, () => `forgot ${mac}`);
    });
}
