import { existsSync, readFileSync, statSync } from "node:fs";

/**
 * The serial console of a guest that a BMC simulator starts (and restarts): QEMU appends to one file across
 * power-ons, and the test waits for patterns in it, from an offset, by polling.
 */
export class SerialFile {
  constructor(readonly path: string) {}

  get length(): number {
    return existsSync(this.path) ? statSync(this.path).size : 0;
  }

  text(from = 0): string {
    return existsSync(this.path) ? readFileSync(this.path, "latin1").slice(from) : "";
  }

  async waitFor(pattern: RegExp, timeoutMs: number, from = 0): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.text(from).match(pattern);
      if (m) return m;
      if (Date.now() > deadline)
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${pattern} in ${this.path}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
