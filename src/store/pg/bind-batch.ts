/**
 * Group commit for PostgreSQL lease writes: the binds a node receives in one event-loop turn (up to
 * MAX_BATCH) go to the database as one statement, so one commit and one round trip cover a burst of
 * REQUESTs, as one SQLite transaction does on a single node. Every row of the statement still goes through
 * the guarded upsert on its own, so a batch decides each address exactly as single writes would.
 *
 * Two binds of the same address cannot share a statement (PostgreSQL refuses to update one row twice in one
 * command): the later one goes into the next batch, which waits for the first's row lock. Rows are written
 * in key order, so two batches never each hold a lock the other waits for.
 */

export const MAX_BATCH = 64;

export interface BatchItem<Req, Res> {
  key: string;
  req: Req;
  resolve(res: Res): void;
  reject(err: unknown): void;
}

export class BindBatcher<Req, Res> {
  private queue: BatchItem<Req, Res>[] = [];
  private scheduled = false;

  /** `run` writes one batch (keys unique) and answers each request; it must settle every item. */
  constructor(private readonly run: (batch: BatchItem<Req, Res>[]) => Promise<void>) {}

  submit(key: string, req: Req): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      this.queue.push({ key, req, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        // The rest of this turn's packets join the batch; a quiet server still writes at once.
        setImmediate(() => this.drain());
      }
    });
  }

  private drain(): void {
    this.scheduled = false;
    let queue = this.queue;
    this.queue = [];
    while (queue.length) {
      const batch: BatchItem<Req, Res>[] = [];
      const keys = new Set<string>();
      const later: BatchItem<Req, Res>[] = [];
      for (const item of queue) {
        if (batch.length < MAX_BATCH && !keys.has(item.key)) {
          keys.add(item.key);
          batch.push(item);
        } else later.push(item);
      }
      queue = later;
      // Batches run side by side on the pool's connections; the database orders writes to one row.
      this.run(batch).catch((err) => {
        for (const item of batch) item.reject(err);
      });
    }
  }
}
