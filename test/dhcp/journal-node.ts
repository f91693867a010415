/**
 * Drives one RenewalJournal in its own process (so the test can run it under strace):
 * `tsx journal-node.ts <file> <bursts> <perBurst> <spread>`. Each burst records `perBurst` renewals and waits
 * for all of them to be durable: all in one event-loop turn, or with `spread` = 1 each in its own turn (as
 * RENEWs arriving one by one during a journal write). Then every renewal is written to the database (the
 * journal empties). Prints {saves, writes, held} as JSON: `held` is what the file held after the last burst.
 */
import { readFileSync } from "node:fs";
import { type Renewal, RenewalJournal } from "../../src/dhcp/renewal-journal.ts";
import { silentLogger } from "../../src/log.ts";

const [file = "", bursts = "0", perBurst = "0", spread = "0"] = process.argv.slice(2);
const pending = new Map<string, Renewal>();
const journal = new RenewalJournal(file, () => [...pending.values()], silentLogger);
const turn = () => new Promise<void>((res) => setImmediate(res));
let saves = 0;
for (let b = 0; b < Number(bursts); b++) {
  const waits: Promise<void>[] = [];
  for (let i = 0; i < Number(perBurst); i++) {
    const n = b * Number(perBurst) + i;
    const ip = `10.1.${n >> 8}.${n & 255}`;
    pending.set(ip, {
      subnet: "10.1.0.0/16",
      lease: {
        ip,
        mac: `02:00:00:00:${(n >> 8).toString(16).padStart(2, "0")}:${(n & 255).toString(16).padStart(2, "0")}`,
        state: "bound",
        expiresAt: Date.now() + 3_600_000,
        hostname: null,
        updatedAt: Date.now(),
      },
    });
    waits.push(journal.save());
    saves++;
    if (spread === "1") await turn();
  }
  await Promise.all(waits);
}
const held = (JSON.parse(readFileSync(file, "utf8")) as Renewal[]).length;
pending.clear();
await journal.save();
await journal.close();
process.stdout.write(JSON.stringify({ saves, writes: journal.writes, held }));
