import type { Statement } from "better-sqlite3";
import type { EventInput, EventSink } from "../model/event.ts";
import type { Machine } from "../model/machine.ts";
import { type Db, nowIso } from "./db.ts";
import type { EventStore } from "./events.ts";
import type { MachineStore, Sighting } from "./machines.ts";

/**
 * Group commit for what every boot request writes: its events and the machine's `last_seen`. Writes queue
 * here and commit in one transaction at the end of the event-loop turn that queued them (setImmediate), so
 * the requests Node parsed in one turn share a commit (one commit costs as much as ten small writes), and
 * on a quiet server each still commits at once, adding no delay. A request is answered only after
 * `committed()` resolves, so every answered request's history is in the database, as it was with one
 * transaction per write; a commit that fails rejects, the request is answered with an error and retried.
 * Events take their id and time when committed, at most one turn after they happened.
 */
export class HistoryWriter implements EventSink {
  private queue: (() => void)[] = [];
  /** MAC → newest `last_seen` queued: a machine asking many times in one turn is one row update. */
  private touches = new Map<string, string>();
  private batch: { promise: Promise<void>; resolve: () => void; reject: (err: unknown) => void } | undefined;
  private readonly commit;
  private readonly touch;

  private readonly begin;
  private readonly end;
  /** Set on a node sharing PostgreSQL (shipSightings). */
  private pending: { mark: Statement<[string, number]>; orphans: Statement<[]>; seq: number } | undefined;
  private readonly recordPending;

  constructor(
    private readonly db: Db,
    private readonly events: EventStore,
    private readonly machines: MachineStore,
  ) {
    this.commit = db.transaction((writes: (() => void)[], touches: Map<string, string>) => {
      for (const write of writes) write();
      for (const [mac, at] of touches) if (this.touch.run(at, mac).changes) this.markPending(mac);
    });
    this.recordPending = db.transaction((s: Sighting) => {
      const r = this.machines.recordSighting(s);
      this.markPending(s.mac);
      // Machines the local cap forgot need no shipping: PostgreSQL keeps its own cap.
      if (r.evicted) this.pending?.orphans.run();
      return r;
    });
    this.touch = db.prepare("UPDATE machines SET last_seen = ? WHERE mac = ?");
    this.begin = db.prepare("BEGIN");
    this.end = db.prepare("COMMIT");
  }

  /**
   * From now on every sighting, and every `touched()`, also names its machine in `pending_sightings`, in the
   * transaction that writes it: the node's shipper (pg/ship-sightings.ts) sends those to PostgreSQL. For a
   * node sharing PostgreSQL; `seq` grows with each mark, so a machine seen again while its earlier sighting is
   * being shipped stays pending.
   */
  shipSightings(): void {
    const last = this.db.prepare("SELECT coalesce(max(seq), 0) n FROM pending_sightings").get() as { n: number };
    this.pending = {
      mark: this.db.prepare(
        "INSERT INTO pending_sightings (mac, seq) VALUES (?, ?) ON CONFLICT(mac) DO UPDATE SET seq = excluded.seq",
      ),
      orphans: this.db.prepare("DELETE FROM pending_sightings WHERE mac NOT IN (SELECT mac FROM machines)"),
      seq: last.n,
    };
  }

  /** Queues an event for the next commit. */
  append(e: EventInput): void {
    this.enqueue(() => this.events.append(e));
  }

  /**
   * MachineStore.recordSighting for the common case of a machine seen before that tells nothing new (its
   * identity fields are known; `recordSighting` never overwrites them): only `last_seen` moves, and that
   * write joins the batch. A new machine, a first sighting or a new field is written at once as before.
   */
  recordSighting(s: Sighting): ReturnType<MachineStore["recordSighting"]> {
    const known = this.machines.get(s.mac);
    if (!known?.firstSeen || teaches(known, s))
      return this.pending ? this.recordPending(s) : this.machines.recordSighting(s);
    const now = this.touched(s.mac);
    return { machine: { ...known, lastSeen: now }, created: false, evicted: 0 };
  }

  /**
   * Queues `last_seen = now` for a machine known to have been seen before, whose sighting tells nothing new
   * (the caller knows: a cached answer to the same request); returns the time written.
   */
  touched(mac: string): string {
    const now = nowIso();
    this.touches.set(mac, now);
    this.openBatch();
    return now;
  }

  /**
   * Runs `fn` (synchronous) inside one transaction, so its reads share one snapshot and one lock of SQLite's
   * shared-memory index instead of taking and dropping it for each statement (two fcntl calls each time).
   * What `fn` wrote directly is committed when it returns or throws, as without the transaction.
   */
  reading<T>(fn: () => T): T {
    if (this.db.inTransaction) return fn();
    this.begin.run();
    try {
      return fn();
    } finally {
      this.end.run();
    }
  }

  /** Resolves once everything queued so far is committed. */
  committed(): Promise<void> {
    return this.batch?.promise ?? Promise.resolve();
  }

  /** Commits the queue now (shutdown; the turn's end does it otherwise). */
  flush(): void {
    const batch = this.batch;
    if (!batch) return;
    const writes = this.queue;
    const touches = this.touches;
    this.batch = undefined;
    this.queue = [];
    this.touches = new Map();
    try {
      this.commit(writes, touches);
    } catch (err) {
      batch.reject(err);
      return;
    }
    batch.resolve();
  }

  private enqueue(write: () => void): void {
    this.queue.push(write);
    this.openBatch();
  }

  /** Opens a batch, committed at the end of this event-loop turn, unless one is open. */
  private openBatch(): void {
    if (this.batch) return;
    let resolve!: () => void;
    let reject!: (err: unknown) => void;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // Whoever awaits committed() gets the error (and answers with it); nobody awaiting is no crash.
    promise.catch(() => {});
    this.batch = { promise, resolve, reject };
    setImmediate(() => this.flush());
  }

  private markPending(mac: string): void {
    if (this.pending) this.pending.mark.run(mac, ++this.pending.seq);
  }
}

/** Whether a sighting fills an identity field the machine does not have yet. */
const teaches = (m: Machine, s: Sighting): boolean =>
  (s.uuid !== undefined && m.uuid === null) ||
  (s.serial !== undefined && m.serial === null) ||
  (s.arch !== undefined && m.arch === null) ||
  (s.hostname !== undefined && m.hostname === null);
