/**
 * At most one run per key at a time: whoever asks while one runs gets its promise, and may listen to its
 * progress. The key is free again once the run settles.
 */
export class SingleFlight<T, P = never> {
  private readonly runs = new Map<string, { promise: Promise<T>; listeners: Set<(p: P) => void> }>();
  private readonly newest = new Map<string, P>();

  run(key: string, start: (report: (p: P) => void) => Promise<T>, onProgress?: (p: P) => void): Promise<T> {
    let running = this.runs.get(key);
    if (!running) {
      const listeners = new Set<(p: P) => void>();
      const promise = start((p) => {
        this.newest.set(key, p);
        listeners.forEach((l) => l(p));
      }).finally(() => {
        this.runs.delete(key);
        this.newest.delete(key);
      });
      running = { promise, listeners };
      this.runs.set(key, running);
    }
    if (onProgress) running.listeners.add(onProgress);
    return running.promise;
  }

  keys(): string[] {
    return [...this.runs.keys()];
  }

  has(key: string): boolean {
    return this.runs.has(key);
  }

  /** The newest progress of every run that reported any, for whoever looks without having started it. */
  latest(): Map<string, P> {
    return new Map(this.newest);
  }
}
