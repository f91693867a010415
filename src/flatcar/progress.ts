import type { Progress } from "./sync.ts";

export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "--:--";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(h > 0 ? 2 : 1, "0");
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

export interface ProgressLine {
  file: string;
  bytes: number;
  total?: number | undefined;
  /** Bytes per second. */
  rate: number;
}

/** One line: file, bar (when the size is known and a width is given), bytes, rate, ETA. */
export function renderLine(p: ProgressLine, barWidth = 0): string {
  const rate = `${formatBytes(Math.round(p.rate))}/s`;
  if (p.total === undefined || p.total === 0) return `${p.file} ${formatBytes(p.bytes)} ${rate}`;
  const frac = Math.min(1, p.bytes / p.total);
  const eta = p.rate > 0 ? (p.total - p.bytes) / p.rate : Number.NaN;
  const filled = Math.round(frac * barWidth);
  const bar = barWidth > 0 ? ` [${"#".repeat(filled)}${".".repeat(barWidth - filled)}]` : "";
  return `${p.file}${bar} ${String(Math.floor(frac * 100)).padStart(3)}% ${formatBytes(p.bytes)}/${formatBytes(p.total)} ${rate} ETA ${formatDuration(eta)}`;
}

export interface ProgressOutput {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/**
 * Turns mirror progress into a redrawn bar on a terminal, or into plain lines (a file's start and end,
 * and a line at most every `plainEveryMs`) for logs and pipes.
 */
export class ProgressReporter {
  private file = "";
  private startedAt = 0;
  private startBytes = 0;
  private lastDraw = 0;
  private last: ProgressLine | undefined;

  constructor(
    private readonly out: ProgressOutput,
    private readonly now: () => number = Date.now,
    private readonly plainEveryMs = 10_000,
  ) {}

  update(p: Progress): void {
    const t = this.now();
    if (p.file !== this.file) {
      this.finishFile();
      this.file = p.file;
      this.startedAt = t;
      this.startBytes = p.bytes;
      this.lastDraw = 0;
    }
    const elapsed = (t - this.startedAt) / 1000;
    const line: ProgressLine = {
      file: p.file,
      bytes: p.bytes,
      total: p.total,
      rate: elapsed > 0 ? (p.bytes - this.startBytes) / elapsed : 0,
    };
    this.last = line;
    const complete = p.total !== undefined && p.bytes >= p.total;
    if (this.out.isTTY) {
      if (complete || t - this.lastDraw >= 100) {
        this.lastDraw = t;
        const width = Math.max(10, Math.min(40, (this.out.columns ?? 80) - 70));
        this.out.write(`\r\x1b[K${renderLine(line, width)}`);
      }
    } else if (this.lastDraw === 0 || t - this.lastDraw >= this.plainEveryMs) {
      this.lastDraw = t;
      if (!complete) this.out.write(`${renderLine(line)}\n`);
    }
  }

  /** Ends the current file's line (a newline on a terminal, a final line otherwise). */
  finishFile(): void {
    if (!this.last) return;
    if (this.out.isTTY) this.out.write("\n");
    else this.out.write(`${renderLine(this.last)}\n`);
    this.last = undefined;
  }
}
