/**
 * vitest's globalSetup (both configs): under `KINDLING_TEST_DATABASE=postgres`, one PostgreSQL cluster for the
 * whole run and the migrated template every test database is copied from (test/helpers/database.ts). Stopping
 * the cluster at the end removes its directory, and with it every database the run created. On SQLite it does
 * nothing.
 */
import { chmodSync } from "node:fs";
import { silentLogger } from "../../src/log.ts";
import { PgDatabase } from "../../src/store/pg/database.ts";
import { migratePg } from "../../src/store/pg/migrate.ts";
import { psql, SOCKET_ENV, TEMPLATE, TEST_ENGINE } from "./database.ts";
import { startPostgres } from "./postgres.ts";

export default async function setup(): Promise<(() => void) | undefined> {
  if (TEST_ENGINE !== "postgres") return undefined;
  // One pool (10 connections at most) per Kindling running at once, in every test process, with room to spare.
  const cluster = startPostgres({ maxConnections: 500 });
  try {
    // Traversable by anyone: some tests run `kindling serve` as nobody, and the socket is in this directory.
    chmodSync(cluster.socketDir, 0o711);
    psql(cluster.socketDir, `CREATE DATABASE ${TEMPLATE}`);
    const db = new PgDatabase({ url: cluster.url(TEMPLATE), poolMax: 1 }, silentLogger);
    try {
      await migratePg(db);
    } finally {
      // No connection may stay on a template while databases are copied from it.
      await db.close();
    }
  } catch (err) {
    cluster.stop();
    throw err;
  }
  // The test processes vitest forks from here, and whatever they spawn, inherit it.
  process.env[SOCKET_ENV] = cluster.socketDir;
  return () => cluster.stop();
}
