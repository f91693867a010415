/**
 * Runs DhcpServer in this process (started inside a test's namespace with `ip netns exec`). Argument: JSON
 * {config, advertise, httpPort, tftpEnabled, dataDir, database?}; with `database` (a postgres:// URL) the
 * leases go there, as `kindling serve --database` puts them. Prints `READY` once listening; on stdin, `stats`
 * prints the stats as one JSON line; stdin closing or SIGTERM stops the server.
 */
import { createInterface } from "node:readline";
import { bootsFromNetwork } from "../../src/boot/lifecycle.ts";
import { DhcpConfigSchema } from "../../src/dhcp/config.ts";
import { DhcpServer } from "../../src/dhcp/server.ts";
import { createLogger } from "../../src/log.ts";
import { Store } from "../../src/store/index.ts";
import { openLeaseDatabase } from "../../src/store/lease-database.ts";
import { PgSettingsSchema } from "../../src/store/pg/settings.ts";
import { machinesFor } from "../helpers/machines.ts";

const args = JSON.parse(process.argv[2]!);
const store = Store.open(args.dataDir);
const log = createLogger(process.env.KINDLING_LOG_LEVEL ?? "warn", false);
const database = await openLeaseDatabase(
  {
    url: args.database,
    postgres: PgSettingsSchema.omit({ url: true }).parse({}),
    sqlite: { db: store.db, file: `${args.dataDir}/kindling.db` },
  },
  log,
);
const server = await DhcpServer.start({
  config: DhcpConfigSchema.parse(args.config),
  advertise: args.advertise,
  httpPort: args.httpPort ?? 8080,
  tftpEnabled: args.tftpEnabled ?? true,
  db: store.db,
  ...(database.repository
    ? {
        leaseDatabase: {
          repository: database.repository,
          available: () => database.available(),
          replayFile: `${args.dataDir}/lease-replay.json`,
        },
        startAt: Math.floor(Math.random() * 2 ** 31),
      }
    : {}),
  machines: machinesFor(store),
  events: store.events,
  log,
  // `kindling serve` asks BootService (groups and the default profile too); here the machine's own profile.
  bootFor: (m) => {
    const profile = m.profile ? store.profiles.get(m.profile) : undefined;
    return { fromNetwork: bootsFromNetwork(m.state, profile), loader: m.loader ?? profile?.loader };
  },
});

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await server.close();
  await database.close();
  store.close();
  process.exit(0);
}
process.on("SIGTERM", () => void stop());
const rl = createInterface({ input: process.stdin });
rl.on("line", (line) => {
  if (line.trim() === "stats") process.stdout.write(`STATS ${JSON.stringify(server.stats())}\n`);
});
rl.on("close", () => void stop());
process.stdout.write("READY\n");
