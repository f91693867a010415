import type { BlockSource } from "./blocks.ts";
import { dataHeader, encodeOack, Opcode, type Packet } from "./packet.ts";

/** One datagram: a buffer, or buffers the kernel gathers into one (DATA header and payload). */
export type Datagram = Buffer | readonly Buffer[];

export interface SessionParams {
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  /** Retransmissions of the same window before giving up. */
  retries: number;
  /** Time without progress after which the transfer ends, however many retries are left. */
  maxIdleMs: number;
  /** Options to acknowledge first; empty → start with DATA 1 (plain RFC 1350). */
  oack: ReadonlyMap<string, string>;
  source: BlockSource;
}

export type Outcome =
  | { kind: "done" }
  /** The client declined right after the OACK: the PXE "read tsize, abort, ask again" pattern. */
  | { kind: "aborted"; reason: string }
  /** `notify`: the client has not been told yet and should get an error packet. */
  | { kind: "failed"; reason: string; notify: boolean };

/**
 * One read transfer as a state machine. It owns no socket: it calls `send` with encoded packets and is
 * fed the packets that arrive from its client's TID. Block numbers are kept as plain integers and
 * only wrapped to 16 bits on the wire, so files past 65535 blocks roll over naturally.
 */
export class Session {
  /** Lowest block not acknowledged yet. */
  private base = 1;
  /** Next block to send; blocks base..next-1 are in flight and held in `window`. */
  private next = 1;
  private readonly window: Buffer[] = [];
  /** Number of the final (short) block once it has been read. */
  private last: number | undefined;
  private awaitingOack: boolean;
  private reading = false;
  private tries = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerDelay = 0;
  /** The running timer is the last one: the client will have been silent for maxIdleMs when it fires. */
  private finalWait = false;
  /** When the client last moved the transfer forward (performance.now()); the start counts as progress. */
  private lastProgress = performance.now();
  private ended = false;
  /** Payload bytes the client has acknowledged. */
  bytes = 0;

  constructor(
    private readonly p: SessionParams,
    private readonly send: (packet: Datagram) => void,
    private readonly onEnd: (outcome: Outcome) => void,
  ) {
    this.awaitingOack = p.oack.size > 0;
  }

  get finished(): boolean {
    return this.ended;
  }

  /**
   * How long the client has left the transfer without progress beyond one retransmission timeout: >= 0 means
   * it is stalled (its packets are lost or it is gone), and the transfer may give way to a new request.
   */
  overdueMs(now: number): number {
    return now - this.lastProgress - this.p.timeoutMs;
  }

  start(): void {
    this.lastProgress = performance.now();
    this.arm();
    if (this.awaitingOack) this.send(encodeOack(this.p.oack));
    else this.pump();
  }

  /** A packet from the client's TID. Returns false for packets that have no place in a read transfer. */
  receive(packet: Packet): boolean {
    if (this.ended) return true;
    if (packet.op === Opcode.ERROR) {
      const reason = `client error ${packet.code}: ${packet.message}`;
      this.end(this.awaitingOack ? { kind: "aborted", reason } : { kind: "failed", reason, notify: false });
      return true;
    }
    if (packet.op !== Opcode.ACK) return false;
    if (this.awaitingOack) {
      if (packet.block !== 0) return true;
      this.awaitingOack = false;
      this.pump();
      this.progress();
      return true;
    }
    // Map the 16-bit number onto the only range it can mean: base-1 (already acknowledged) .. next-1.
    const acked = this.base - 1 + ((packet.block - (this.base - 1)) & 0xffff);
    // Stale, or a duplicate of the previous ACK: answering it would double every later block
    // (Sorcerer's Apprentice). Lost packets are recovered by the timer instead.
    if (acked >= this.next || acked < this.base) return true;
    // shift() rather than splice(): no array is allocated per ACK.
    while (this.base <= acked) {
      this.bytes += this.window.shift()!.length;
      this.base++;
    }
    if (this.last !== undefined && acked === this.last) {
      this.end({ kind: "done" });
      return true;
    }
    // RFC 7440: an ACK inside the window means the client dropped what followed; resend from there.
    this.resend();
    this.pump();
    this.progress();
    return true;
  }

  /** Ends the transfer from the server side; `notify` asks the owner to send the client an error. */
  abort(reason: string, notify = true): void {
    this.end({ kind: "failed", reason, notify });
  }

  /** Reads and sends blocks until the window is full or the file is out. */
  private pump(): void {
    while (!this.reading && !this.ended && this.next < this.base + this.p.windowsize && this.last === undefined) {
      let block: Buffer | Promise<Buffer>;
      try {
        block = this.p.source.next();
      } catch (err) {
        this.abort(`read failed: ${(err as Error).message}`);
        return;
      }
      if (block instanceof Promise) {
        this.reading = true;
        block.then(
          (b) => {
            this.reading = false;
            if (this.ended) return;
            this.emit(b);
            this.pump();
          },
          (err: Error) => {
            this.reading = false;
            this.abort(`read failed: ${err.message}`);
          },
        );
        return;
      }
      this.emit(block);
    }
  }

  private emit(block: Buffer): void {
    if (block.length < this.p.blksize) this.last = this.next;
    this.window.push(block);
    this.send([dataHeader(this.next), block]);
    this.next++;
  }

  /** Sends the blocks in flight again, from the lowest unacknowledged one. */
  private resend(): void {
    for (let i = 0; i < this.window.length; i++) this.send([dataHeader(this.base + i), this.window[i]!]);
  }

  /** The client moved on: the timer restarts at the base delay. Called after sending, so the next block goes out first. */
  private progress(): void {
    if (this.ended) return;
    this.tries = 0;
    this.lastProgress = performance.now();
    this.arm();
  }

  /**
   * (Re)starts the retransmission timer. Each retry waits twice as long as the one before, up to
   * 16× (RFC 1123 asks for an adaptive timer): a client whose own timer is longer than ours then still
   * gets a quiet spell in which to repeat its ACK, instead of drowning in our retransmissions. The wait
   * never runs past maxIdleMs since the last progress: that timer ends the transfer.
   */
  private arm(): void {
    const backoff = this.p.timeoutMs * Math.min(2 ** this.tries, 16);
    const left = Math.ceil(this.p.maxIdleMs - (performance.now() - this.lastProgress));
    this.finalWait = left <= backoff;
    const delay = Math.max(1, Math.min(backoff, left));
    if (this.timer && this.timerDelay === delay) {
      this.timer.refresh();
      return;
    }
    clearTimeout(this.timer);
    this.timerDelay = delay;
    this.timer = setTimeout(() => this.timeout(), delay);
  }

  private timeout(): void {
    if (this.ended) return;
    if (this.finalWait) {
      this.end({ kind: "failed", reason: `no progress for ${this.p.maxIdleMs} ms`, notify: true });
      return;
    }
    if (++this.tries > this.p.retries) {
      this.end({ kind: "failed", reason: `no answer after ${this.p.retries} retransmissions`, notify: true });
      return;
    }
    if (this.awaitingOack) this.send(encodeOack(this.p.oack));
    else this.resend();
    this.arm();
  }

  private end(outcome: Outcome): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.timer);
    this.onEnd(outcome);
  }
}
