/**
 * `--cpu-prof`: Kindling runs with V8's sampling profiler for the storm, and the table gains where its CPU
 * time went — self time per function, grouped by file, the way a flame graph's bottom row reads.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";

const REPO = resolve(import.meta.dirname, "../..");

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }[];
  startTime: number;
  endTime: number;
  samples: number[];
}

/** Node flags that make the process write a .cpuprofile into `dir` when it exits (not allowed in NODE_OPTIONS). */
export const profilerFlags = (dir: string) => ["--cpu-prof", `--cpu-prof-dir=${dir}`];

/** Where a frame lives: a path inside the repo, a package name, or node's own module. */
function place(url: string): string {
  if (!url) return "(native)";
  if (url.startsWith("node:")) return url;
  const path = url.replace(/^file:\/\//, "");
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
  return pkg ? pkg[1]! : relative(REPO, path);
}

const read = (file: string) => JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
const busyHits = (p: CpuProfile) =>
  p.nodes.reduce((n, x) => n + (x.callFrame.functionName === "(idle)" ? 0 : (x.hitCount ?? 0)), 0);

/**
 * Top self-time entries, as printable lines. Every thread writes a profile (tsx's module loader runs in a
 * worker that idles); the busiest one is the server's.
 */
export function profileSummary(dir: string, top = 25): string[] {
  const files = readdirSync(dir).filter((f) => f.endsWith(".cpuprofile"));
  if (files.length === 0) return [`no .cpuprofile in ${dir} (did Kindling exit cleanly?)`];
  const [file, p] = files
    .map((f) => [f, read(join(dir, f))] as const)
    .sort((a, b) => busyHits(b[1]) - busyHits(a[1]))[0]!;
  const msPerSample = (p.endTime - p.startTime) / 1000 / Math.max(1, p.samples.length);
  const self = new Map<string, number>();
  let total = 0;
  for (const n of p.nodes) {
    const hits = n.hitCount ?? 0;
    if (!hits) continue;
    const { functionName, url, lineNumber } = n.callFrame;
    const key = `${functionName || "(anonymous)"} ${place(url)}${url ? `:${lineNumber + 1}` : ""}`;
    self.set(key, (self.get(key) ?? 0) + hits);
    total += hits;
  }
  const rows = [...self].sort((a, b) => b[1] - a[1]).slice(0, top);
  return [
    `Kindling CPU profile (${join(dir, file)}): ${((total * msPerSample) / 1000).toFixed(1)} s sampled, self time:`,
    ...rows.map(([k, hits]) => `  ${((100 * hits) / total).toFixed(1).padStart(5)} %  ${k}`),
  ];
}
