import type { Command } from "commander";
import type { Event } from "../model/event.ts";
import { ApiClient } from "./client.ts";
import { eventRows } from "./machines.ts";
import { print } from "./table.ts";

type Globals = { server?: string; token?: string; dataDir?: string; json?: boolean };

export function registerEventCommands(program: Command): void {
  program
    .command("events")
    .description("boot and audit events, newest first (talks to a running server)")
    .option("--mac <mac>", "only this machine")
    .option("--kind <kind>", "only this kind")
    .option("--limit <n>", "how many", "50")
    .option("--before <id>", "only events older than this id (the next page: the last id shown)")
    .action(async (o, cmd: Command) => {
      const g = cmd.optsWithGlobals<Globals>();
      const q = new URLSearchParams(
        Object.entries({ mac: o.mac, kind: o.kind, limit: o.limit, before: o.before }).filter(([, v]) => v) as [
          string,
          string,
        ][],
      );
      const es = await new ApiClient(g).request<Event[]>("GET", `/events?${q}`);
      print(g.json === true, es, () => eventRows(es));
    });
}
