/**
 * One "node" in its own process: `tsx lease-node.ts <url> <node> <clients> <subnet> <first-ip> <size> <gate>`.
 * Connects, waits at the shared advisory lock `gate` the test holds (so every node starts at once), then
 * allocates an address for each of its clients from the same candidate list and prints [mac, ip | null] pairs
 * as JSON.
 */
import { PgDatabase } from "../../src/store/pg/database.ts";
import { PgLeaseRepository } from "../../src/store/pg/leases.ts";

const [url = "", node = "0", clients = "0", subnet = "", first = "", size = "0", gateKey = ""] = process.argv.slice(2);
const db = new PgDatabase({ url, poolMax: 4 });
const repo = new PgLeaseRepository(db);
const base = first.split(".").map(Number);
const candidates = Array.from({ length: Number(size) }, (_, i) => `${base[0]}.${base[1]}.${base[2]}.${base[3]! + i}`);
try {
  const gate = await db.connect();
  await gate.query("SELECT pg_advisory_lock_shared($1)", [gateKey]);
  gate.release(true);
  const results = await Promise.all(
    Array.from({ length: Number(clients) }, async (_, c) => {
      const mac = `02:aa:00:00:${Number(node).toString(16).padStart(2, "0")}:${c.toString(16).padStart(2, "0")}`;
      const r = await repo.allocate({ subnet, mac, candidates, leaseMs: 3_600_000, hostname: null, now: Date.now() });
      return [mac, r.ok ? r.lease.ip : null];
    }),
  );
  process.stdout.write(JSON.stringify(results));
} finally {
  await db.close();
}
