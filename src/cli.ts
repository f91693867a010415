import { Command } from "commander";
import { ProfileFileError } from "./boot/builtin-profiles.ts";
import { registerAssetsCommands } from "./cli/assets.ts";
import { registerIgnitionCommands } from "./cli/butane.ts";
import { CliError } from "./cli/client.ts";
import { registerEventCommands } from "./cli/events.ts";
import { registerHealthcheckCommand } from "./cli/healthcheck.ts";
import { registerMachineCommands } from "./cli/machines.ts";
import { registerProfileCommands } from "./cli/profiles.ts";
import { registerServeCommand } from "./cli/serve.ts";
import { ListenerError } from "./listen.ts";
import { DataDirInUseError } from "./lock/data-dir.ts";
import { ConfigError } from "./model/errors.ts";
import { SchemaTooNewError } from "./store/db.ts";

/** Errors whose message is the whole story: printed without a stack trace. */
const EXPECTED = [CliError, ConfigError, ProfileFileError, ListenerError, SchemaTooNewError, DataDirInUseError];

const program = new Command("kindling")
  .description("Network-boot provisioning for bare-metal Flatcar Container Linux")
  .option("--config <file>", "YAML config file")
  .option("--data-dir <dir>", "data directory (env KINDLING_DATA_DIR)")
  .option("--server <url>", "API base URL for client commands (env KINDLING_SERVER)", undefined)
  .option("--token <token>", "API token for client commands (env KINDLING_API_TOKEN)")
  .option("--json", "machine-readable output")
  .showHelpAfterError();

registerServeCommand(program);
registerMachineCommands(program);
registerProfileCommands(program);
registerEventCommands(program);
registerAssetsCommands(program);
registerIgnitionCommands(program);
registerHealthcheckCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (EXPECTED.some((E) => err instanceof E)) {
    process.stderr.write(`kindling: ${(err as Error).message}\n`);
    process.exit(1);
  }
  throw err;
}
