/** One "node" migrating a database: `tsx migrate-node.ts <url>` prints its MigrateResult as JSON. */
import { PgDatabase } from "../../src/store/pg/database.ts";
import { migratePg } from "../../src/store/pg/migrate.ts";

const db = new PgDatabase({ url: process.argv[2]!, poolMax: 2 });
try {
  process.stdout.write(JSON.stringify(await migratePg(db, { lockTimeoutMs: 30_000 })));
} finally {
  await db.close();
}
