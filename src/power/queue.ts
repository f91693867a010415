/** Thrown when a BMC already has as many calls waiting as allowed. */
export class BmcBusyError extends Error {
  override name = "BmcBusyError";
}

/**
 * One call at a time per BMC (BMCs are small computers that drop sessions under parallel load), a bounded
 * line of waiting calls per BMC, and a bound on calls running at once across all BMCs.
 */
export class BmcQueues {
  private readonly tails = new Map<string, { tail: Promise<unknown>; waiting: number }>();
  private running = 0;
  private readonly slots: (() => void)[] = [];

  constructor(
    private readonly perBmcWaiting: number,
    private readonly maxRunning: number,
  ) {}

  /** Whether `key` has calls running or waiting (the poller skips those). */
  busy(key: string): boolean {
    return this.tails.has(key);
  }

  run<T>(key: string, job: () => Promise<T>): Promise<T> {
    const entry = this.tails.get(key) ?? { tail: Promise.resolve(), waiting: 0 };
    if (entry.waiting >= this.perBmcWaiting)
      return Promise.reject(new BmcBusyError(`BMC ${key} has ${entry.waiting} calls waiting; try again later`));
    entry.waiting++;
    const result = entry.tail.then(async () => {
      await this.acquire();
      try {
        return await job();
      } finally {
        this.release();
      }
    });
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    entry.tail = tail;
    this.tails.set(key, entry);
    void tail.then(() => {
      entry.waiting--;
      if (entry.waiting === 0 && this.tails.get(key) === entry) this.tails.delete(key);
    });
    return result;
  }

  private acquire(): Promise<void> {
    if (this.running < this.maxRunning) {
      this.running++;
      return Promise.resolve();
    }
    return new Promise((res) => this.slots.push(res));
  }

  private release(): void {
    const next = this.slots.shift();
    if (next) next();
    else this.running--;
  }
}
