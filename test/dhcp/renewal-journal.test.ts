/**
 * The renewal journal a PostgreSQL node keeps during a database outage (src/dhcp/renewal-journal.ts): every
 * renewal is durable before its ACK leaves, and a burst of renewals costs a few journal writes, not one each.
 * Durability is checked on the system calls themselves: the journal-writing process runs under strace, and
 * every rename of the journal must follow an fsync of the new file and be followed by an fsync of the
 * directory before anything else is written.
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type Renewal, RenewalJournal } from "../../src/dhcp/renewal-journal.ts";
import { silentLogger } from "../../src/log.ts";
import { removeTempDirs, tempDir } from "./harness.ts";

const ROOT = resolve(import.meta.dirname, "../..");
afterAll(removeTempDirs);

const renewal = (n: number): Renewal => ({
  subnet: "10.1.0.0/16",
  lease: {
    ip: `10.1.${n >> 8}.${n & 255}`,
    mac: `02:00:00:00:00:${(n & 255).toString(16).padStart(2, "0")}`,
    state: "bound",
    expiresAt: 1_900_000_000_000,
    hostname: null,
    updatedAt: 1_800_000_000_000,
  },
});

interface Traced {
  saves: number;
  writes: number;
  held: number;
  trace: string[];
}

function traced(dir: string, bursts: number, perBurst: number, spread: boolean): Traced {
  const file = join(dir, "lease-replay.json");
  const log = join(dir, "trace");
  const r = spawnSync(
    "strace",
    [
      "-f",
      "-qq",
      "-e",
      "trace=openat,fsync,fdatasync,rename,renameat,renameat2,unlink,unlinkat",
      "-o",
      log,
      join(ROOT, "node_modules/.bin/tsx"),
      join(ROOT, "test/dhcp/journal-node.ts"),
      file,
      String(bursts),
      String(perBurst),
      spread ? "1" : "0",
    ],
    { encoding: "utf8", timeout: 60_000 },
  );
  if (r.status !== 0) throw new Error(`journal-node failed (${r.error?.message ?? `exit ${r.status}`}): ${r.stderr}`);
  return { ...(JSON.parse(r.stdout) as Omit<Traced, "trace">), trace: readFileSync(log, "utf8").split("\n") };
}

/**
 * Walks the trace in order: fds are mapped to paths at openat (completed or resumed), and each rename or
 * removal of the journal is checked against the fsyncs around it.
 */
function checkDurability(trace: string[], dir: string): { renames: number; removals: number } {
  const file = join(dir, "lease-replay.json");
  const tmp = `${file}.tmp`;
  const fdPath = new Map<number, string>();
  const opening = new Map<string, string>(); // pid → path of an openat still unfinished
  let tmpSynced = false;
  let dirSynced = true;
  let renames = 0;
  let removals = 0;
  for (const line of trace) {
    const pid = line.split(" ", 1)[0]!;
    const open = /openat\(AT_FDCWD, "([^"]+)"/.exec(line);
    if (open) {
      const done = /\) = (\d+)$/.exec(line);
      if (done) fdPath.set(Number(done[1]), open[1]!);
      else opening.set(pid, open[1]!);
      if (open[1] === tmp) {
        // A new journal is written only after the last change of the old one is durable.
        expect(dirSynced, "directory fsynced before the next journal write").toBe(true);
        tmpSynced = false;
      }
      continue;
    }
    const resumed = /<\.\.\. openat resumed>.*= (\d+)$/.exec(line);
    if (resumed && opening.has(pid)) {
      fdPath.set(Number(resumed[1]), opening.get(pid)!);
      opening.delete(pid);
      continue;
    }
    const sync = /\bf(?:data)?sync\((\d+)/.exec(line);
    if (sync) {
      const path = fdPath.get(Number(sync[1]));
      if (path === tmp) tmpSynced = true;
      if (path === dir) dirSynced = true;
      continue;
    }
    if (line.includes(`"${tmp}", `) && /rename/.test(line)) {
      expect(tmpSynced, "the new journal fsynced before it is renamed into place").toBe(true);
      renames++;
      dirSynced = false;
      continue;
    }
    if (/unlink/.test(line) && line.includes(`"${file}"`)) {
      removals++;
      dirSynced = false;
    }
  }
  expect(dirSynced, "directory fsynced after the last change").toBe(true);
  return { renames, removals };
}

describe("renewal journal", () => {
  it("fsyncs the new journal before the rename and the directory after it, and removes it durably", () => {
    const dir = tempDir("kindling-journal-");
    const run = traced(dir, 3, 200, false);
    expect(run.held).toBe(600);
    const { renames, removals } = checkDurability(run.trace, dir);
    expect(renames).toBeGreaterThanOrEqual(3);
    expect(removals).toBe(1);
  });

  it("writes a burst of renewals in one turn as one journal write, and renewals arriving one by one in a few", () => {
    const oneTurn = traced(tempDir("kindling-journal-"), 4, 500, false);
    // Per burst: one write for the turn's 500 renewals; plus the final one that empties the journal.
    expect(oneTurn.saves).toBe(2000);
    expect(oneTurn.writes).toBe(5);

    const dir = tempDir("kindling-journal-");
    const spread = traced(dir, 2, 400, true);
    expect(spread.held).toBe(800);
    checkDurability(spread.trace, dir);
    // A write takes several event-loop turns (open, write, fsync, close, rename, fsync of the directory, each
    // completing in a later turn), and each turn brings one renewal: every write carries several.
    expect(spread.writes).toBeLessThanOrEqual(spread.saves / 4);
  });

  it("reads back what it saved, and a renewal that cannot be made durable is refused", async () => {
    const dir = tempDir("kindling-journal-");
    const file = join(dir, "lease-replay.json");
    const held = [renewal(1), renewal(2)];
    await new RenewalJournal(file, () => held, silentLogger).save();
    expect(new RenewalJournal(file, () => [], silentLogger).read()).toEqual(held);

    writeFileSync(file, "{ not json");
    expect(new RenewalJournal(file, () => [], silentLogger).read()).toEqual([]);

    const nowhere = new RenewalJournal(join(dir, "gone", "lease-replay.json"), () => held, silentLogger);
    await expect(nowhere.save()).rejects.toThrow(/ENOENT/);
  });
});
