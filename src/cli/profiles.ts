import type { Command } from "commander";
import { stringify } from "yaml";
import type { Profile } from "../model/profile.ts";
import { ApiClient } from "./client.ts";
import { print, table } from "./table.ts";

type Globals = { server?: string; token?: string; dataDir?: string; json?: boolean };

const target = (p: Profile) =>
  p.flatcar
    ? `flatcar ${p.flatcar.channel} ${p.flatcar.version} ${p.flatcar.arch}`
    : p.boot
      ? `kernel ${p.boot.kernel}`
      : "local disk";

export function registerProfileCommands(program: Command): void {
  const profiles = program.command("profiles").description("inspect profiles (talks to a running server)");
  const client = (cmd: Command) => new ApiClient(cmd.optsWithGlobals<Globals>());
  const json = (cmd: Command) => cmd.optsWithGlobals<Globals>().json === true;

  profiles
    .command("list")
    .description("list profiles")
    .action(async (_o, cmd: Command) => {
      const ps = await client(cmd).request<Profile[]>("GET", "/profiles");
      print(json(cmd), ps, () =>
        table(
          ["NAME", "BOOTS", "INSTALL", "BUILTIN", "DESCRIPTION"],
          ps.map((p) => [p.name, target(p), p.install ? "yes" : "no", p.builtin ? "yes" : "no", p.description]),
        ),
      );
    });

  profiles
    .command("show <name>")
    .description("one profile")
    .action(async (name: string, _o, cmd: Command) => {
      const p = await client(cmd).request<Profile>("GET", `/profiles/${encodeURIComponent(name)}`);
      print(json(cmd), p, () => stringify(p).trimEnd());
    });
}
