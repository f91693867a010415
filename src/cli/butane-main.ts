/** Stand-alone entry for the Ignition commands (`npx tsx src/cli/butane-main.ts butane FILE`); `kindling` mounts the same builders. */
import { Command } from "commander";
import { registerIgnitionCommands } from "./butane.ts";

const program = new Command("kindling");
registerIgnitionCommands(program);
await program.parseAsync(process.argv);
