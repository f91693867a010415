import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { DhcpStats } from "../dhcp/server.ts";
import type { Event } from "../model/event.ts";
import type { MachineState } from "../model/machine.ts";
import type { TftpStats } from "../tftp/server.ts";

/** What the collectors read at scrape time; servers that are off or failed to bind answer undefined. */
export interface MetricsSources {
  machinesByState(): Record<MachineState, number>;
  dhcp(): DhcpStats | undefined;
  tftp(): TftpStats | undefined;
  /** The event log's live feed (asset sync outcomes and bytes are counted as they happen). */
  subscribe(listener: (e: Event) => void): () => void;
  /** The lease database: its engine, whether it answers, and PostgreSQL's connection pool. */
  database?(): {
    engine: string;
    available: boolean;
    pool: { inFlight: number; idle: number; total: number; waiting: number } | undefined;
  };
  /** A PostgreSQL node's replica and shipper (store/index.ts replication()); undefined on SQLite. */
  replication?(): { listening: boolean; unshipped: { events: number; sightings: number } } | undefined;
}

/**
 * Kindling's Prometheus metrics in a registry of its own (several servers in one process, as in tests,
 * never share series). Protocol counters are read from the servers' own stats when scraped, so the hot
 * paths carry no metrics code; only HTTP requests and asset syncs are counted as they happen.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly httpRequests: Counter<"method" | "route" | "status">;
  private readonly httpDuration: Histogram<"method" | "route">;
  private readonly unsubscribe: () => void;
  private readonly queryDuration: Histogram<"outcome">;

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });

    this.httpRequests = new Counter({
      name: "kindling_http_requests_total",
      help: "HTTP requests by method, matched route pattern and status",
      labelNames: ["method", "route", "status"],
      registers,
    });
    this.httpDuration = new Histogram({
      name: "kindling_http_request_duration_seconds",
      help: "HTTP request handling time (until the handler returned; streamed bodies continue after)",
      labelNames: ["method", "route"],
      buckets: [0.001, 0.005, 0.02, 0.1, 0.5, 2],
      registers,
    });

    new Gauge({
      name: "kindling_machines",
      help: "Machines by lifecycle state",
      labelNames: ["state"],
      registers,
      collect() {
        for (const [state, n] of Object.entries(sources.machinesByState())) this.set({ state }, n);
      },
    });

    new Counter({
      name: "kindling_dhcp_packets_total",
      help: "DHCP messages received and sent, by message type",
      labelNames: ["type"],
      registers,
      collect() {
        this.reset();
        for (const [type, n] of Object.entries(sources.dhcp()?.byType ?? {})) this.inc({ type }, n);
      },
    });
    new Counter({
      name: "kindling_dhcp_requests_total",
      help: "DHCP requests received, by outcome (replied, ignored on purpose, dropped: could not be served, malformed, refused: the lease database could not answer)",
      labelNames: ["outcome"],
      registers,
      collect() {
        this.reset();
        const s = sources.dhcp();
        if (!s) return;
        for (const outcome of ["replied", "ignored", "dropped", "malformed", "refused"] as const)
          this.inc({ outcome }, s[outcome]);
      },
    });
    new Gauge({
      name: "kindling_dhcp_leases",
      help: "Addresses per subnet in full mode, by state (used, free, quarantined: declined, counted in used too)",
      labelNames: ["subnet", "state"],
      registers,
      collect() {
        this.reset();
        for (const l of sources.dhcp()?.leases ?? []) {
          this.set({ subnet: l.subnet, state: "used" }, l.used);
          this.set({ subnet: l.subnet, state: "free" }, l.free);
          this.set({ subnet: l.subnet, state: "quarantined" }, l.quarantined);
        }
      },
    });

    new Gauge({
      name: "kindling_dhcp_replay_waiting",
      help: "Renewals acknowledged from memory while PostgreSQL was unreachable, not yet written to it",
      registers,
      collect() {
        this.set(sources.dhcp()?.replayWaiting ?? 0);
      },
    });

    new Gauge({
      name: "kindling_database_up",
      help: "Whether the lease database answered last time (1) or is unreachable and retried with backoff (0), by engine",
      labelNames: ["engine"],
      registers,
      collect() {
        this.reset();
        const d = sources.database?.();
        if (d) this.set({ engine: d.engine }, d.available ? 1 : 0);
      },
    });
    new Gauge({
      name: "kindling_database_connections",
      help: "PostgreSQL connection pool: connections in use, idle, and queries waiting for one",
      labelNames: ["state"],
      registers,
      collect() {
        this.reset();
        const p = sources.database?.()?.pool;
        if (!p) return;
        this.set({ state: "in_use" }, p.total - p.idle);
        this.set({ state: "idle" }, p.idle);
        this.set({ state: "waiting" }, p.waiting);
      },
    });
    new Gauge({
      name: "kindling_replica_listening",
      help: "Whether this node hears the other nodes' changes to the shared state (1), or is reconnecting (0)",
      registers,
      collect() {
        this.reset();
        const r = sources.replication?.();
        if (r) this.set(r.listening ? 1 : 0);
      },
    });
    new Gauge({
      name: "kindling_unshipped",
      help: "Events and machine sightings recorded on this node and not yet in PostgreSQL (grows while it is unreachable)",
      labelNames: ["kind"],
      registers,
      collect() {
        this.reset();
        const r = sources.replication?.();
        if (!r) return;
        this.set({ kind: "events" }, r.unshipped.events);
        this.set({ kind: "sightings" }, r.unshipped.sightings);
      },
    });
    this.queryDuration = new Histogram({
      name: "kindling_database_query_duration_seconds",
      help: "PostgreSQL queries and transactions, from asking the pool to the answer (waiting for a connection included), by outcome",
      labelNames: ["outcome"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2],
      registers,
    });

    new Counter({
      name: "kindling_tftp_transfers_total",
      help: "TFTP transfers by outcome (done, failed: refused or broken off; PXE tsize probes are neither)",
      labelNames: ["outcome"],
      registers,
      collect() {
        this.reset();
        const s = sources.tftp();
        if (!s) return;
        this.inc({ outcome: "done" }, s.transfers);
        this.inc({ outcome: "failed" }, s.failed);
      },
    });
    new Counter({
      name: "kindling_tftp_requests_refused_total",
      help: "TFTP read requests not served because of a slot limit (dropped: per-client or global cap reached; evicted: a stalled transfer gave way to a new request)",
      labelNames: ["reason"],
      registers,
      collect() {
        this.reset();
        const s = sources.tftp();
        if (!s) return;
        this.inc({ reason: "dropped" }, s.dropped);
        this.inc({ reason: "evicted" }, s.evicted);
      },
    });
    new Counter({
      name: "kindling_tftp_bytes_total",
      help: "TFTP payload bytes acknowledged by clients",
      registers,
      collect() {
        this.reset();
        this.inc(sources.tftp()?.bytes ?? 0);
      },
    });
    new Gauge({
      name: "kindling_tftp_active_transfers",
      help: "TFTP transfers in flight",
      registers,
      collect() {
        this.set(sources.tftp()?.active ?? 0);
      },
    });

    new Counter({
      name: "kindling_malformed_packets_total",
      help: "Undecodable or out-of-place packets dropped, by protocol",
      labelNames: ["protocol"],
      registers,
      collect() {
        this.reset();
        this.inc({ protocol: "dhcp" }, sources.dhcp()?.malformed ?? 0);
        this.inc({ protocol: "tftp" }, sources.tftp()?.malformed ?? 0);
      },
    });

    const syncs = new Counter({
      name: "kindling_asset_syncs_total",
      help: "Flatcar release syncs by outcome (done, failed)",
      labelNames: ["outcome"],
      registers,
    });
    const syncBytes = new Counter({
      name: "kindling_asset_sync_bytes_total",
      help: "Bytes of Flatcar release files downloaded and verified",
      registers,
    });
    // Both outcomes exist from the start, so a rate() over failures works before the first one.
    syncs.inc({ outcome: "done" }, 0);
    syncs.inc({ outcome: "failed" }, 0);
    this.unsubscribe = sources.subscribe((e) => {
      if (e.kind === "flatcar.sync.done") {
        syncs.inc({ outcome: "done" });
        const bytes = e.detail.bytes;
        if (typeof bytes === "number" && bytes > 0) syncBytes.inc(bytes);
      } else if (e.kind === "flatcar.sync.failed") syncs.inc({ outcome: "failed" });
    });
  }

  /** Counts one finished HTTP request under its route pattern (never the raw path: bounded label values). */
  observeHttp(method: string, route: string, status: number, seconds: number): void {
    this.httpRequests.inc({ method, route, status: String(status) });
    this.httpDuration.observe({ method, route }, seconds);
  }

  /** One PostgreSQL query or transaction finished (store/pg/database.ts reports each). */
  observeQuery(ms: number, ok: boolean): void {
    this.queryDuration.observe({ outcome: ok ? "ok" : "error" }, ms / 1000);
  }

  async exposition(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  close(): void {
    this.unsubscribe();
  }
}
