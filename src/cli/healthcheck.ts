import type { Command } from "commander";
import { loadConfig } from "../config.ts";
import { readHolder } from "../lock/data-dir.ts";
import { describeError } from "../net/error-cause.ts";
import { CliError } from "./client.ts";

/** `HTTP 0.0.0.0:8080` → a URL this host can reach it at. */
function healthzUrl(listener: string): string | undefined {
  const m = listener.match(/^HTTP (.+):(\d+)$/);
  if (!m) return undefined;
  const host = m[1] === "0.0.0.0" || m[1] === "::" ? "127.0.0.1" : m[1]!;
  return `http://${host.includes(":") ? `[${host}]` : host}:${m[2]}/healthz`;
}

/**
 * For container health checks and service monitors: asks `/healthz` of the `kindling serve` that holds this
 * data dir, on the port it actually bound (from `serve.json`), whichever way that port was configured.
 */
export function registerHealthcheckCommand(program: Command): void {
  program
    .command("healthcheck")
    .description("exit 0 if the kindling serve holding the data dir answers /healthz, else say why and exit 1")
    .option("--timeout <seconds>", "how long to wait for the answer", "4")
    .action(async (o: { timeout: string }, cmd: Command) => {
      const g = cmd.optsWithGlobals<{ config?: string; dataDir?: string }>();
      const { dataDir } = loadConfig({ file: g.config, flags: g.dataDir ? { "data-dir": g.dataDir } : {} });
      let listeners: string[];
      try {
        listeners = readHolder(dataDir).listeners;
      } catch (err) {
        throw new CliError(`no kindling serve is running on data dir ${dataDir} (${describeError(err)})`);
      }
      const url = listeners.map(healthzUrl).find((u) => u !== undefined);
      if (!url) throw new CliError(`the kindling serve on data dir ${dataDir} has no HTTP listener`);
      const res = await fetch(url, { signal: AbortSignal.timeout(Number(o.timeout) * 1000) }).catch((err) => {
        throw new CliError(`${url}: ${describeError(err)}`);
      });
      const body = await res.text();
      if (!res.ok) throw new CliError(`${url}: HTTP ${res.status} ${body.trim()}`);
      process.stdout.write(`${url}: ${body.trim()}\n`);
    });
}
