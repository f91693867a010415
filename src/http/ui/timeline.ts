import type { Event } from "../../model/event.ts";

/** Boot phases in the order a network install goes through them. */
export type Phase = "DHCP" | "TFTP" | "iPXE" | "Kernel" | "Ignition" | "Install" | "First boot" | "Operator" | "Other";

export interface Step {
  at: string;
  phase: Phase;
  kind: string;
  summary: string;
  /** Milliseconds since the step before (undefined for the first). */
  sincePrevMs: number | undefined;
  failed: boolean;
}

function phaseOf(e: Event): Phase {
  const k = e.kind;
  if (k.startsWith("dhcp.")) return "DHCP";
  if (k.startsWith("tftp.")) return "TFTP";
  if (k === "ipxe.request" || k === "machine.discovered") return "iPXE";
  // Downloads by a booting client: the kernel and initrd, or the install image flatcar-install fetches.
  if (k === "http.asset") return String(e.detail.path).includes("flatcar_production_image") ? "Install" : "Kernel";
  if (k.startsWith("ignition.") || k.startsWith("render.")) return e.detail.stage === "final" ? "Install" : "Ignition";
  if (
    k === "lifecycle.install-started" ||
    k === "lifecycle.install-done" ||
    k === "lifecycle.install-failed" ||
    k === "lifecycle.deadline"
  )
    return "Install";
  if (k === "lifecycle.first-boot" || k === "lifecycle.booted") return "First boot";
  if (k.startsWith("lifecycle.") || k.startsWith("machine.")) return "Operator";
  return "Other";
}

const FAILED = /(failed|refused|unavailable|deadline|nak|exhausted|decline)/;

function summaryOf(e: Event): string {
  const d = e.detail;
  const parts: string[] = [];
  if (e.kind === "ipxe.request") parts.push(`answer: ${d.outcome}`, d.profile ? `profile ${d.profile}` : "no profile");
  else if (e.kind.startsWith("tftp.")) parts.push(String(d.file), `${d.bytes} bytes`, `${d.durationMs} ms`);
  else if (e.kind === "http.asset") parts.push(String(d.path).split("/").pop() ?? "", `${d.bytes} bytes`);
  else if (e.kind === "ignition.served") parts.push(`${d.stage} config (${d.kind}, spec ${d.spec})`);
  else if (e.kind.startsWith("lifecycle.")) parts.push(`${d.from} → ${d.to}`, `by ${d.by}`);
  else if (e.kind.startsWith("dhcp.") && d.file) parts.push(`boot file ${d.file}`);
  for (const key of ["error", "reason"]) if (typeof d[key] === "string") parts.push(String(d[key]));
  // A row that counts repeats (limits/coalesce.ts) stands for that many more within its window.
  if (typeof d.repeated === "number") parts.push(`${d.repeated} more like it within ${d.windowSeconds} s`);
  return parts.filter((p) => p && p !== "undefined").join(" · ");
}

/** A machine's events (any order) as its boot story: oldest first, each with its phase and the time it took to get there. */
export function bootStory(events: readonly Event[]): Step[] {
  const sorted = [...events].sort((a, b) => a.at.localeCompare(b.at) || a.id - b.id);
  return sorted.map((e, i) => {
    const prev = sorted[i - 1];
    return {
      at: e.at,
      phase: phaseOf(e),
      kind: e.kind,
      summary: summaryOf(e),
      sincePrevMs: prev ? Date.parse(e.at) - Date.parse(prev.at) : undefined,
      failed: FAILED.test(e.kind),
    };
  });
}

/** TFTP events carry the client's address, not its MAC: they belong to a machine when they came from an address it used. */
export function addressesOf(events: readonly Event[], ip: string | null): Set<string> {
  const out = new Set<string>();
  if (ip) out.add(ip);
  for (const e of events)
    if (typeof e.detail.ip === "string" && e.kind !== "ignition.refused" && e.kind !== "report.refused")
      out.add(e.detail.ip);
  return out;
}
