import { readFileSync } from "node:fs";
import type { Command } from "commander";
import type { Machine } from "../model/machine.ts";
import { POWER_ACTIONS } from "../model/power.ts";
import type { PowerResult } from "../power/service.ts";
import { type ApiClient, CliError } from "./client.ts";
import { print, table } from "./table.ts";

type Client = (cmd: Command) => ApiClient;
type Json = (cmd: Command) => boolean;

const path = (mac: string, rest: string) => `/machines/${encodeURIComponent(mac)}${rest}`;

const stepRows = (steps: PowerResult[]) =>
  table(
    ["ACTION", "OK", "ANSWER"],
    steps.map((s) => [s.action, s.ok ? "yes" : "no", s.answer]),
  );

/** Reinstall without walking to the rack: back to ready, next boot from the network once, power cycle. */
export async function reinstallPowerCycle(api: ApiClient, mac: string, asJson: boolean): Promise<void> {
  const out = await api.request<{ machine: Machine; steps: PowerResult[] }>("POST", path(mac, "/power"), {
    action: "cycle",
    reinstall: true,
  });
  print(asJson, out, () => `${mac} is ${out.machine.state}; power:\n${stepRows(out.steps)}`);
}

/**
 * The password comes from a file (`--password-file`, `-` for stdin) or KINDLING_BMC_PASSWORD, never from a flag
 * (`ps` shows flags to every user).
 */
function password(o: { passwordFile?: string }): string {
  const raw = o.passwordFile
    ? readFileSync(o.passwordFile === "-" ? 0 : o.passwordFile, "utf8").replace(/\r?\n$/, "")
    : process.env.KINDLING_BMC_PASSWORD;
  if (!raw) throw new CliError("the BMC password: --password-file FILE (or - for stdin), or KINDLING_BMC_PASSWORD");
  return raw;
}

export function registerPowerCommands(machines: Command, client: Client, json: Json): void {
  machines
    .command("power <mac> <action>")
    .description(`out-of-band power through the machine's BMC: ${POWER_ACTIONS.join("|")}`)
    .action(async (mac: string, action: string, _o, cmd: Command) => {
      if (!(POWER_ACTIONS as readonly string[]).includes(action))
        throw new CliError(`action must be one of ${POWER_ACTIONS.join(", ")}, got ${JSON.stringify(action)}`);
      const r = await client(cmd).request<PowerResult>("POST", path(mac, "/power"), { action });
      print(json(cmd), r, () => `${mac} ${action}: ${r.state ? `${r.state} (${r.answer})` : r.answer}`);
    });

  const bmc = machines.command("bmc").description("a machine's BMC (IPMI or Redfish)");
  bmc
    .command("set <mac>")
    .description("set or replace the machine's BMC; the password is stored encrypted and never shown again")
    .requiredOption("--driver <driver>", "ipmi or redfish")
    .requiredOption("--address <host>", "BMC address")
    .requiredOption("--username <name>")
    .option("--password-file <file>", "file holding the password (- for stdin); else env KINDLING_BMC_PASSWORD")
    .option("--port <n>", "default 623 (ipmi) or 443 (redfish)")
    .option("--cipher-suite <n>", "ipmi: RMCP+ cipher suite (3 or 17; default: ask the BMC)")
    .option("--system-id <id>", "redfish: the ComputerSystem id (default: the only one)")
    .option("--auth <mode>", "redfish: session (default) or basic")
    .option("--ca-cert <file>", "redfish: PEM CA (or the BMC's self-signed certificate) to verify TLS with")
    .option("--insecure", "redfish: accept any TLS certificate")
    .action(async (mac: string, o, cmd: Command) => {
      const body = {
        driver: o.driver,
        address: o.address,
        username: o.username,
        password: password(o),
        ...(o.port && { port: Number(o.port) }),
        ...(o.cipherSuite && { cipherSuite: Number(o.cipherSuite) }),
        ...(o.systemId && { systemId: o.systemId }),
        ...(o.auth && { auth: o.auth }),
        ...(o.caCert && { caCert: readFileSync(o.caCert, "utf8") }),
        ...(o.insecure && { insecure: true }),
      };
      const b = await client(cmd).request<{ driver: string; address: string; port: number }>(
        "PUT",
        path(mac, "/bmc"),
        body,
      );
      print(json(cmd), b, () => `${mac}: BMC ${b.driver} ${b.address}:${b.port} (password set)`);
    });
  bmc
    .command("show <mac>")
    .description("the machine's BMC and last known power state (the password is never shown)")
    .action(async (mac: string, _o, cmd: Command) => {
      const b = await client(cmd).request<Record<string, unknown>>("GET", path(mac, "/bmc"));
      print(json(cmd), b, () =>
        table(
          ["FIELD", "VALUE"],
          Object.entries(b).map(([k, v]) => [k, typeof v === "object" && v !== null ? JSON.stringify(v) : String(v)]),
        ),
      );
    });
  bmc
    .command("clear <mac>")
    .description("remove the machine's BMC and its stored password")
    .action(async (mac: string, _o, cmd: Command) => {
      await client(cmd).request("DELETE", path(mac, "/bmc"));
      print(json(cmd), { cleared: mac }, () => `${mac}: BMC removed`);
    });
}
