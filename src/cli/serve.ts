import type { Command } from "commander";
import { loadConfig, SETTINGS } from "../config.ts";
import { createLogger } from "../log.ts";
import { startKindling } from "../server.ts";

/** Flag values commander collected, keyed by flag name as config.ts expects. */
function flagValues(cmd: Command): Record<string, unknown> {
  const opts = cmd.optsWithGlobals<Record<string, unknown>>();
  const out: Record<string, unknown> = {};
  for (const s of SETTINGS) {
    const key = s.flag.replace(/-([a-z])/g, (_, ch: string) => ch.toUpperCase());
    if (opts[key] !== undefined) out[s.flag] = opts[key];
  }
  return out;
}

export function registerServeCommand(program: Command): void {
  const serve = program.command("serve").description("run the DHCP, TFTP and HTTP servers");
  for (const s of SETTINGS) {
    if (s.flag === "data-dir") continue; // a global option
    if (s.flag === "strict-listeners") serve.option(`--${s.flag}`, s.help);
    else serve.option(`--${s.flag} <value>`, `${s.help} (env ${s.env})`);
  }
  serve.action(async (_o, cmd: Command) => {
    const config = loadConfig({ file: cmd.optsWithGlobals<{ config?: string }>().config, flags: flagValues(cmd) });
    const log = createLogger(config.logLevel);
    const kindling = await startKindling(config, log);
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      const graceMs = config.shutdownGraceSeconds * 1000;
      log.info({ signal, graceSeconds: config.shutdownGraceSeconds }, "shutting down");
      // close() ends every connection at the grace; this only catches a close that hangs anyway (a stuck disk).
      setTimeout(() => {
        log.error({ graceSeconds: config.shutdownGraceSeconds }, "shutdown did not finish after the grace; exiting");
        log.flush();
        process.exit(1);
      }, graceMs + 5000).unref();
      await kindling.close(graceMs);
      log.flush();
      process.exit(0);
    };
    process.on("SIGTERM", () => void stop("SIGTERM"));
    process.on("SIGINT", () => void stop("SIGINT"));
  });
}
