import type { Logger } from "../log.ts";
import type { EventSink } from "../model/event.ts";
import { clipDetail, clipText } from "./clip.ts";

/**
 * Something a client nobody authenticated made happen, and can make happen again at any rate: a refused
 * TFTP or signed-route request, a console login with a wrong token, an `/ipxe` request.
 */
export interface Occurrence {
  /** Event kind, e.g. `tftp.failed`, `ignition.refused`, `ipxe.request`. */
  kind: string;
  /** Address the request came from. */
  client: string | undefined;
  /**
   * Server-chosen cause or outcome from a small set (`expired`, `wait`, a TFTP error code), never client
   * text: with kind, client and mac, what is counted together.
   */
  reason: string;
  mac?: string | null | undefined;
  /** What the event and the log line hold; long client-supplied strings are clipped (limits/clip.ts). */
  detail: Record<string, unknown>;
  /** Fixed text of the log line. */
  message: string;
  level?: "info" | "warn" | "error";
}

export interface CoalescedLogOptions {
  events: EventSink;
  log: Logger;
  /** Length of a counting window. */
  windowMs?: number;
  /** Distinct (kind, client, mac, reason) counted apart per window; beyond, one shared count per kind. */
  maxKeys?: number;
}

export const COALESCE_WINDOW_MS = 60_000;
export const COALESCE_MAX_KEYS = 128;

interface Entry {
  first: Occurrence;
  /** Kind with the MAC, else the client: a new row in a group first writes the group's counts, keeping its story in order. */
  group: string;
  /** Occurrences since the last row written for this key. */
  pending: number;
}

/**
 * Turns a stream of occurrences into a bounded number of event rows and log lines. The first of a key
 * (kind, client, mac, reason) is written at once, so an operator sees it; the next ones are counted and
 * written as one row with `repeated` when the window ends. A key that stays busy writes one row per window;
 * a key quiet for a whole window is forgotten, so its next occurrence is news again. With more than
 * `maxKeys` keys in play (spoofed sources, invented MACs) the rest of each kind share one key. Rows and log
 * lines per window are therefore at most 2 × (maxKeys + number of kinds), whatever the request rate.
 */
export class CoalescedLog {
  private readonly entries = new Map<string, Entry>();
  private readonly windowMs: number;
  private readonly maxKeys: number;
  private readonly timer: NodeJS.Timeout;
  /** While `capturing` runs: what was recorded, as given. */
  private captured: Occurrence[] | undefined;

  constructor(private readonly opts: CoalescedLogOptions) {
    this.windowMs = opts.windowMs ?? COALESCE_WINDOW_MS;
    this.maxKeys = opts.maxKeys ?? COALESCE_MAX_KEYS;
    this.timer = setInterval(() => this.flush(), this.windowMs);
    this.timer.unref();
  }

  record(occurrence: Occurrence): void {
    this.captured?.push(occurrence);
    let key = [occurrence.kind, occurrence.client ?? "", occurrence.mac ?? "", clipText(occurrence.reason, 64)].join(
      "\0",
    );
    let o = occurrence;
    if (!this.entries.has(key) && this.entries.size >= this.maxKeys) {
      key = `${o.kind}\0*`;
      o = { ...o, mac: null, detail: { ...o.detail, overflow: `more than ${this.maxKeys} sources` } };
    }
    const entry = this.entries.get(key);
    if (entry) {
      entry.pending++;
      return;
    }
    const first = { ...o, reason: clipText(o.reason, 64), detail: clipDetail(o.detail) };
    const group = `${first.kind}\0${first.mac ?? first.client ?? ""}`;
    for (const other of this.entries.values()) if (other.group === group && other.pending > 0) this.writeCount(other);
    this.entries.set(key, { first, group, pending: 0 });
    this.write(first, {});
  }

  /**
   * Runs `fn` and returns what it recorded along with its value, so a caller that answers the same request
   * again without running `fn` (a cached `/ipxe` answer) can record exactly the same occurrences.
   */
  capturing<T>(fn: () => T): { value: T; recorded: Occurrence[] } {
    const outer = this.captured;
    const recorded: Occurrence[] = [];
    this.captured = recorded;
    try {
      const value = fn();
      return { value, recorded };
    } finally {
      this.captured = outer;
      outer?.push(...recorded);
    }
  }

  /** Ends the window: one row per key that occurred again, and forgets keys that were quiet. */
  flush(): void {
    for (const [key, entry] of this.entries) {
      if (entry.pending === 0) this.entries.delete(key);
      else this.writeCount(entry);
    }
  }

  /** Writes what is still counted and stops the timer. */
  close(): void {
    clearInterval(this.timer);
    this.flush();
    this.entries.clear();
  }

  private writeCount(entry: Entry): void {
    this.write(entry.first, { repeated: entry.pending, windowSeconds: Math.round(this.windowMs / 1000) });
    entry.pending = 0;
  }

  private write(o: Occurrence, extra: Record<string, unknown>): void {
    const detail = { ...o.detail, ...extra };
    this.opts.events.append({ mac: o.mac ?? null, kind: o.kind, detail });
    this.opts.log[o.level ?? "info"](
      { kind: o.kind, ...(o.mac ? { mac: o.mac } : {}), ...detail },
      "repeated" in extra ? `${o.message} (${extra.repeated} more like it within ${extra.windowSeconds} s)` : o.message,
    );
  }
}
