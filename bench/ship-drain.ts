/**
 * How fast a node's shipper (src/store/pg/shipper.ts) drains a backlog into PostgreSQL: what a node recorded
 * during an outage, or an old SQLite file's log on its first start on PostgreSQL. Records EVENTS events and
 * SIGHTINGS new machines in a node's file, then times `flush()` against a PostgreSQL 15 cluster with its
 * durable defaults (test/helpers/postgres.ts), and checks that PostgreSQL holds every one of them.
 *
 *   npx tsx bench/ship-drain.ts [events=50000] [sightings=5000]
 */
import { silentLogger } from "../src/log.ts";
import { Store } from "../src/store/index.ts";
import { PgDatabase } from "../src/store/pg/database.ts";
import { migratePg } from "../src/store/pg/migrate.ts";
import { startShipper } from "../src/store/pg/shipper.ts";
import { tempDir } from "../test/helpers/kindling.ts";
import { startPostgres } from "../test/helpers/postgres.ts";

const EVENTS = Number(process.argv[2] ?? 50_000);
const SIGHTINGS = Number(process.argv[3] ?? 5_000);
const hex = (n: number) => n.toString(16).padStart(2, "0");

const pgs = startPostgres({ durable: true });
try {
  const db = new PgDatabase({ url: pgs.url(await pgs.createDatabase("ship_drain")) });
  await migratePg(db);
  const store = Store.open(tempDir("kindling-ship-drain-"), { node: "bench" });
  store.history.shipSightings();
  for (let i = 0; i < EVENTS; i++)
    store.history.append({ mac: `52:54:00:00:${hex(i % 250)}:01`, kind: "ipxe.request", detail: { i } });
  for (let i = 0; i < SIGHTINGS; i++)
    store.history.recordSighting({ mac: `52:54:01:${hex(i >> 8)}:${hex(i & 255)}:00` });
  await store.history.committed();
  const shipper = startShipper({
    sqlite: store.db,
    pg: db,
    node: "bench",
    maxDiscovered: SIGHTINGS,
    log: silentLogger,
    intervalMs: 3_600_000,
  });
  const started = performance.now();
  await shipper.flush();
  const ms = performance.now() - started;
  const count = async (table: string) => Number((await db.query(`SELECT count(*) n FROM ${table}`)).rows[0]!.n);
  const held = { events: await count("events"), machines: await count("machines") };
  if (held.events !== EVENTS || held.machines !== SIGHTINGS)
    throw new Error(`PostgreSQL holds ${JSON.stringify(held)}`);
  console.log(
    JSON.stringify({
      events: EVENTS,
      sightings: SIGHTINGS,
      ms: Math.round(ms),
      eventsPerSecond: Math.round(EVENTS / (ms / 1000)),
    }),
  );
  await shipper.stop();
  await db.close();
  store.close();
} finally {
  pgs.stop();
}
