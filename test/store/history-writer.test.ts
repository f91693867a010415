import { spawn } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { Store } from "../../src/store/index.ts";
import { freePort, tempDir } from "../helpers/kindling.ts";

const BIN = join(import.meta.dirname, "..", "..", "bin", "kindling.js");

const MAC = "52:54:00:0b:00:01";
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A store on a real file, and a second connection that sees only what was committed to it. */
function open() {
  const dir = tempDir();
  dirs.push(dir);
  const store = Store.open(dir);
  const other = new Database(join(dir, "kindling.db"), { readonly: true });
  const committed = (sql: string, ...args: unknown[]) => other.prepare(sql).all(...args);
  return { store, committed, close: () => (other.close(), store.close()) };
}

const endOfTurn = () => new Promise((r) => setImmediate(r));

describe("history writer (group commit)", () => {
  it("holds a turn's events back and commits them together by the end of the turn, in order", async () => {
    const { store, committed, close } = open();
    for (let i = 0; i < 50; i++) store.history.append({ mac: MAC, kind: "ipxe.request", detail: { i } });
    expect(committed("SELECT * FROM events")).toEqual([]);
    await store.history.committed();
    const rows = committed("SELECT detail FROM events ORDER BY id") as { detail: string }[];
    expect(rows.map((r) => JSON.parse(r.detail).i)).toEqual([...Array(50).keys()]);
    close();
  });

  it("commits at the turn's end even when nobody awaits", async () => {
    const { store, committed, close } = open();
    store.history.append({ kind: "x" });
    await endOfTurn();
    expect(committed("SELECT kind FROM events")).toEqual([{ kind: "x" }]);
    close();
  });

  it("a batch that cannot commit rejects committed() and writes none of it", async () => {
    const { store, committed, close } = open();
    store.history.append({ kind: "fine" });
    // JSON.stringify throws on a BigInt inside the transaction: the whole batch rolls back.
    store.history.append({ kind: "broken", detail: { n: 1n } });
    await expect(store.history.committed()).rejects.toThrow(/BigInt/);
    expect(committed("SELECT * FROM events")).toEqual([]);
    // The next batch is independent of the failed one.
    store.history.append({ kind: "later" });
    await store.history.committed();
    expect(committed("SELECT kind FROM events")).toEqual([{ kind: "later" }]);
    close();
  });

  it("a sighting that only moves last_seen joins the batch; one that teaches a field is written at once", async () => {
    const { store, committed, close } = open();
    store.machines.create({ mac: MAC, labels: {}, metadata: {} }, "discovered");
    const seen = () => committed("SELECT first_seen, last_seen, uuid, hostname FROM machines")[0];

    // Never seen before: first_seen is set at once.
    const first = store.history.recordSighting({ mac: MAC, arch: "amd64" });
    expect(first.created).toBe(false);
    expect(seen()).toMatchObject({ first_seen: first.machine.firstSeen, last_seen: first.machine.lastSeen });

    await new Promise((r) => setTimeout(r, 5));
    const again = store.history.recordSighting({ mac: MAC, arch: "amd64" });
    expect(again.machine.lastSeen! > first.machine.lastSeen!).toBe(true);
    expect(seen()).toMatchObject({ last_seen: first.machine.lastSeen });
    await store.history.committed();
    expect(seen()).toMatchObject({ first_seen: first.machine.firstSeen, last_seen: again.machine.lastSeen });

    // A uuid the machine did not have: written before the call returns, like MachineStore.recordSighting.
    const taught = store.history.recordSighting({ mac: MAC, uuid: "4c4c4544-0042-3010-8052-b4c04f4e4d32" });
    expect(seen()).toMatchObject({ uuid: "4c4c4544-0042-3010-8052-b4c04f4e4d32", last_seen: taught.machine.lastSeen });

    // An unknown MAC becomes a discovered machine at once.
    const created = store.history.recordSighting({ mac: "52:54:00:0b:00:02" });
    expect(created.created).toBe(true);
    expect(committed("SELECT state FROM machines WHERE mac = ?", "52:54:00:0b:00:02")).toEqual([
      { state: "discovered" },
    ]);
    close();
  });

  it("touched() joins the batch: a machine asked about many times in one turn is one update, the newest time", async () => {
    const { store, committed, close } = open();
    store.machines.create({ mac: MAC, labels: {}, metadata: {} }, "discovered");
    store.history.recordSighting({ mac: MAC });
    const times: string[] = [];
    for (let i = 0; i < 5; i++) {
      times.push(store.history.touched(MAC));
      await new Promise((r) => setTimeout(r, 2));
    }
    // Each touch above ran in its own turn; these share one.
    const shared = [store.history.touched(MAC), store.history.touched(MAC), store.history.touched(MAC)];
    expect(committed("SELECT last_seen FROM machines")).toEqual([{ last_seen: times.at(-1) }]);
    await store.history.committed();
    expect(committed("SELECT last_seen FROM machines")).toEqual([{ last_seen: shared.at(-1) }]);
    close();
  });

  it("reading() runs a request's reads in one transaction and commits what it wrote directly, even on a throw", () => {
    const { store, committed, close } = open();
    expect(store.history.reading(() => store.machines.get(MAC))).toBeUndefined();
    expect(() =>
      store.history.reading(() => {
        store.history.recordSighting({ mac: MAC });
        throw new Error("render failed");
      }),
    ).toThrow("render failed");
    expect(store.db.inTransaction).toBe(false);
    expect(committed("SELECT state FROM machines")).toEqual([{ state: "discovered" }]);
    close();
  });

  it("on a node sharing PostgreSQL, each sighting and touch names its machine for the shipper, in its own commit", async () => {
    const { store, committed, close } = open();
    const pending = () =>
      committed("SELECT mac, seq FROM pending_sightings ORDER BY seq") as { mac: string; seq: number }[];
    // A node on its own keeps no such list.
    store.history.recordSighting({ mac: MAC });
    await store.history.committed();
    expect(pending()).toEqual([]);

    store.history.shipSightings();
    const B = "52:54:00:0b:00:02";
    // New machine and learned field: written at once, with the mark.
    store.history.recordSighting({ mac: B });
    expect(pending()).toEqual([{ mac: B, seq: 1 }]);
    store.history.recordSighting({ mac: MAC, uuid: "4c4c4544-0042-3010-8052-b4c04f4e4d32" });
    expect(pending()).toEqual([
      { mac: B, seq: 1 },
      { mac: MAC, seq: 2 },
    ]);
    // Nothing new: the mark joins the batch with last_seen, and moves past every earlier seq.
    store.history.recordSighting({ mac: B });
    store.history.touched(MAC);
    expect(pending()).toEqual([
      { mac: B, seq: 1 },
      { mac: MAC, seq: 2 },
    ]);
    await store.history.committed();
    expect(pending()).toEqual([
      { mac: B, seq: 3 },
      { mac: MAC, seq: 4 },
    ]);
    // A touch of a machine no longer in the file marks nothing.
    store.history.touched("52:54:00:0b:00:99");
    await store.history.committed();
    expect(pending()).toHaveLength(2);
    close();
  });

  it("the seq goes on from the file after a restart, and machines the local cap forgot leave the list", async () => {
    const dir = tempDir();
    dirs.push(dir);
    const first = Store.open(dir, { maxDiscovered: 100 });
    first.history.shipSightings();
    for (let i = 0; i < 3; i++) first.history.recordSighting({ mac: `52:54:00:0d:00:0${i}` });
    first.close();
    const store = Store.open(dir, { maxDiscovered: 100 });
    store.history.shipSightings();
    store.history.recordSighting({ mac: "52:54:00:0d:00:10" });
    const seqs = () => store.db.prepare("SELECT seq FROM pending_sightings ORDER BY seq").all();
    expect(seqs()).toEqual([{ seq: 1 }, { seq: 2 }, { seq: 3 }, { seq: 4 }]);
    // 200 invented MACs against a cap of 100: the list holds only machines the file still has.
    for (let i = 0; i < 200; i++)
      store.history.recordSighting({ mac: `52:54:00:0e:00:${i.toString(16).padStart(2, "0")}` });
    const orphans = store.db
      .prepare("SELECT count(*) n FROM pending_sightings WHERE mac NOT IN (SELECT mac FROM machines)")
      .get() as { n: number };
    const listed = store.db.prepare("SELECT count(*) n FROM pending_sightings").get() as { n: number };
    expect(orphans.n).toBe(0);
    expect(listed.n).toBeLessThanOrEqual(100);
    store.close();
  });

  it("close() commits what is still queued", () => {
    const dir = tempDir();
    dirs.push(dir);
    const store = Store.open(dir);
    store.history.append({ kind: "last words" });
    store.close();
    const db = new Database(join(dir, "kindling.db"), { readonly: true });
    expect(db.prepare("SELECT kind FROM events").all()).toEqual([{ kind: "last words" }]);
    db.close();
  });
});

describe("/ipxe answers only what is committed", () => {
  it("each answered request's event is in the database file when its answer arrives", async () => {
    // A separate process: in this one the test's client could not read an answer before the server's turn
    // (and its commit) ended, whatever the order in the server.
    const dir = tempDir();
    dirs.push(dir);
    const port = await freePort();
    // 96 new machines from one address: more than the default discovery rate lets in.
    const config = join(dir, "kindling.yaml");
    writeFileSync(config, "boot:\n  discoveriesPerMinute: 100000\n");
    const server = spawn(
      process.execPath,
      [BIN, "--config", config, "serve", "--data-dir", dir, "--http-host", "127.0.0.1", "--http-port", String(port)],
      {
        env: { ...process.env, KINDLING_TFTP_PORT: "0", KINDLING_DHCP_MODE: "off", KINDLING_ADVERTISE: "127.0.0.1" },
        stdio: "ignore",
      },
    );
    const exited = new Promise((r) => server.once("exit", r));
    const url = `http://127.0.0.1:${port}`;
    try {
      for (
        let i = 0;
        i < 300 &&
        !(await fetch(`${url}/healthz`).then(
          (r) => r.ok,
          () => false,
        ));
        i++
      )
        await new Promise((r) => setTimeout(r, 100));
      const other = new Database(join(dir, "kindling.db"), { readonly: true });
      const recorded = other.prepare("SELECT count(*) n FROM events WHERE mac = ? AND kind = 'ipxe.request'");
      // Distinct machines in parallel, so they share commits; each looks for its own event on its answer.
      // 96 distinct machines: each request stays news for the coalescing log (128 keys), so each is written.
      for (let round = 0; round < 3; round++) {
        const found = await Promise.all(
          Array.from({ length: 32 }, async (_, i) => {
            const mac = `52:54:00:0c:${round.toString(16).padStart(2, "0")}:${i.toString(16).padStart(2, "0")}`;
            const r = await fetch(`${url}/ipxe?mac=${mac}`);
            expect(r.status).toBe(200);
            return (recorded.get(mac) as { n: number }).n;
          }),
        );
        expect(found).toEqual(Array(32).fill(1));
      }
      other.close();
    } finally {
      server.kill("SIGTERM");
      await exited;
    }
  });
});
