/** Turns the fleet's per-machine timings and the servers' usage into the side-by-side table. */
import type { FleetResult, Stage } from "./plan.ts";
import { STAGES } from "./plan.ts";
import type { Usage } from "./usage.ts";

export type Server = "kindling" | "peer";

export interface StageSummary {
  n: number;
  p50: number;
  p99: number;
  retries: number;
  failures: number;
}

export interface RunSummary {
  server: Server;
  round: number;
  machines: number;
  failed: number;
  /** Failure reasons with counts, most common first. */
  reasons: { stage: Stage; reason: string; count: number }[];
  stages: Record<Stage, StageSummary>;
  /** Storm start → the last machine's Ignition config; undefined when a machine never got one. */
  allIgnitionMs: number | undefined;
  allReportedMs: number | undefined;
  /** Power-on → Ignition, per machine. */
  bootP50: number;
  bootP99: number;
  usage: Usage;
  fleet: FleetResult["fleet"];
}

/** Nearest-rank percentile of unsorted values; NaN for none. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export function summarize(server: Server, round: number, r: FleetResult, usage: Usage): RunSummary {
  const ms = r.machines;
  const stages = {} as Record<Stage, StageSummary>;
  for (const s of STAGES) {
    const done = ms.flatMap((m) => (m.stages[s] ? [m.stages[s]!] : []));
    const failedHere = ms.filter((m) => m.failure?.stage === s);
    stages[s] = {
      n: done.length,
      p50: percentile(
        done.map((t) => t.end - t.start),
        50,
      ),
      p99: percentile(
        done.map((t) => t.end - t.start),
        99,
      ),
      retries: done.reduce((n, t) => n + t.retries, 0) + failedHere.reduce((n, m) => n + m.failure!.retries, 0),
      failures: failedHere.length,
    };
  }
  const counts = new Map<string, { stage: Stage; reason: string; count: number }>();
  for (const m of ms) {
    if (!m.failure) continue;
    // Per-machine details (MACs, URLs with signatures) would make every reason unique.
    const reason = m.failure.reason
      .replace(/https?:\/\/\S+/g, "<url>")
      .replace(/([0-9a-f]{2}[:-]){5}[0-9a-f]{2}/g, "<mac>");
    const key = `${m.failure.stage} ${reason}`;
    const c = counts.get(key) ?? { stage: m.failure.stage, reason, count: 0 };
    c.count++;
    counts.set(key, c);
  }
  const lastEnd = (s: Stage) =>
    ms.every((m) => m.stages[s]) ? Math.max(...ms.map((m) => m.stages[s]!.end)) : undefined;
  const boots = ms.flatMap((m) => (m.stages.ignition ? [m.stages.ignition.end - m.arrivalMs] : []));
  return {
    server,
    round,
    machines: ms.length,
    failed: ms.filter((m) => m.failure).length,
    reasons: [...counts.values()].sort((a, b) => b.count - a.count),
    stages,
    allIgnitionMs: lastEnd("ignition"),
    allReportedMs: lastEnd("report-done"),
    bootP50: percentile(boots, 50),
    bootP99: percentile(boots, 99),
    usage,
    fleet: r.fleet,
  };
}

const msText = (v: number | undefined) =>
  v === undefined || Number.isNaN(v)
    ? "—"
    : v >= 10_000
      ? `${(v / 1000).toFixed(1)} s`
      : `${v.toFixed(v < 10 ? 1 : 0)} ms`;
const ratio = (k: number | undefined, p: number | undefined) =>
  k === undefined || p === undefined || Number.isNaN(k) || Number.isNaN(p) || p === 0 ? "—" : (k / p).toFixed(2);
const mb = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
const pad = (s: string, n: number) => s.padStart(n);

/** One round, Kindling beside the peer; either may be missing (--only). */
export function formatRound(k: RunSummary | undefined, p: RunSummary | undefined): string {
  const out: string[] = [];
  const both = (f: (s: RunSummary) => string) => [k ? f(k) : "—", p ? f(p) : "—"];
  out.push(
    `${"stage".padEnd(16)}${pad("kindling p50", 13)}${pad("p99", 10)}${pad("peer p50", 11)}${pad("p99", 10)}` +
      `${pad("ratio p50", 11)}${pad("p99", 6)}${pad("retries k/p", 13)}${pad("failed k/p", 12)}`,
  );
  for (const s of STAGES) {
    const ks = k?.stages[s];
    const ps = p?.stages[s];
    out.push(
      `${s.padEnd(16)}${pad(msText(ks?.p50), 13)}${pad(msText(ks?.p99), 10)}${pad(msText(ps?.p50), 11)}${pad(msText(ps?.p99), 10)}` +
        `${pad(ratio(ks?.p50, ps?.p50), 11)}${pad(ratio(ks?.p99, ps?.p99), 6)}` +
        `${pad(`${ks?.retries ?? "—"}/${ps?.retries ?? "—"}`, 13)}${pad(`${ks?.failures ?? "—"}/${ps?.failures ?? "—"}`, 12)}`,
    );
  }
  const row = (label: string, kv: string, pv: string, r: string) =>
    out.push(`${label.padEnd(44)}${pad(kv, 12)}${pad(pv, 12)}${pad(r, 8)}`);
  out.push("");
  row("", "kindling", "peer", "ratio");
  row(
    "all machines have their Ignition",
    ...(both((s) => msText(s.allIgnitionMs)) as [string, string]),
    ratio(k?.allIgnitionMs, p?.allIgnitionMs),
  );
  row(
    "all installs reported (install-done)",
    ...(both((s) => msText(s.allReportedMs)) as [string, string]),
    ratio(k?.allReportedMs, p?.allReportedMs),
  );
  row(
    "power-on → Ignition, p50",
    ...(both((s) => msText(s.bootP50)) as [string, string]),
    ratio(k?.bootP50, p?.bootP50),
  );
  row(
    "power-on → Ignition, p99",
    ...(both((s) => msText(s.bootP99)) as [string, string]),
    ratio(k?.bootP99, p?.bootP99),
  );
  row("failed machines", ...(both((s) => `${s.failed}/${s.machines}`) as [string, string]), "");
  row(
    "server peak RSS (all its processes)",
    ...(both((s) => mb(s.usage.peakRss)) as [string, string]),
    ratio(k?.usage.peakRss, p?.usage.peakRss),
  );
  row(
    "largest single process, peak RSS",
    ...(both((s) => `${s.usage.peakProcess} ${mb(s.usage.peakProcessRss)}`) as [string, string]),
    "",
  );
  row(
    "server CPU seconds (user + system)",
    ...(both((s) => s.usage.cpuSeconds.toFixed(1)) as [string, string]),
    ratio(k?.usage.cpuSeconds, p?.usage.cpuSeconds),
  );
  row(
    "load generator: CPU seconds, loop delay p99",
    ...(both((s) => `${s.fleet.cpuSeconds.toFixed(0)} s ${msText(s.fleet.loopDelayP99Ms)}`) as [string, string]),
    "",
  );
  for (const s of [k, p]) {
    if (!s || s.reasons.length === 0) continue;
    out.push(`${s.server} failures:`);
    for (const r of s.reasons.slice(0, 5)) out.push(`  ${r.count} × ${r.stage}: ${r.reason}`);
  }
  return out.join("\n");
}
