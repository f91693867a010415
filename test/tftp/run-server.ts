/**
 * Runs Kindling's TFTP server alone in this process, for tests that need it in its own process (its RSS,
 * whether it survives, what it logs). Argument: JSON {config, roots}. Prints `READY <port>` once listening;
 * on stdin, `stats` prints `STATS <json>` (the server's stats, events appended, RSS); stdin closing or
 * SIGTERM stops it. Log lines (pino JSON, warn and above) go to stdout too.
 */
import { createInterface } from "node:readline";
import { createLogger } from "../../src/log.ts";
import { TftpConfigSchema } from "../../src/tftp/config.ts";
import { TftpServer } from "../../src/tftp/server.ts";

const args = JSON.parse(process.argv[2]!);
const config = TftpConfigSchema.parse(args.config);
let events = 0;
const server = await TftpServer.start({
  config,
  roots: args.roots,
  events: { append: () => void events++ },
  log: createLogger(process.env.KINDLING_LOG_LEVEL ?? "warn", false),
});

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await server.close();
  process.exit(0);
}
process.on("SIGTERM", () => void stop());
const rl = createInterface({ input: process.stdin });
rl.on("line", (line) => {
  if (line.trim() !== "stats") return;
  const stats = { ...server.stats(), events, rss: process.memoryUsage.rss() };
  process.stdout.write(`STATS ${JSON.stringify(stats)}\n`);
});
rl.on("close", () => void stop());
process.stdout.write(`READY ${server.address.port}\n`);
