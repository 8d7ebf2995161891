// Prometheus metrics (prom-client), one registry per process. Everything that counts something receives this
// object; nothing reads a global registry.

import { createRequire } from "node:module";

import type * as PromClient from "prom-client";

// prom-client's index also loads its Pushgateway (node:http, node:https), cluster aggregation (node:cluster),
// Summary and bucket helpers; this module uses five of its files, loaded alone (~5 MB less resident memory in
// every process, docs/benchmarks.md change 12; the package has no `exports` map, package-lock.json pins it, and
// test/cli.test.ts reads what they register at /metrics). The types are the package's.
const require = createRequire(import.meta.url);
const Counter = require("prom-client/lib/counter.js") as typeof PromClient.Counter;
const Gauge = require("prom-client/lib/gauge.js") as typeof PromClient.Gauge;
const Histogram = require("prom-client/lib/histogram.js") as typeof PromClient.Histogram;
const Registry = require("prom-client/lib/registry.js") as typeof PromClient.Registry;
const collectDefaultMetrics = require("prom-client/lib/defaultMetrics.js") as typeof PromClient.collectDefaultMetrics;

export type Endpoint = "graph" | "token";

/** What the HTTP layer reports; a no-op implementation is used when metrics are off (tests, commands). */
export interface HttpObserver {
  response(endpoint: Endpoint, status: number): void;
  waited(endpoint: Endpoint, ms: number, kind: "retry_after" | "backoff"): void;
}

export const NO_HTTP_OBSERVER: HttpObserver = { response: () => undefined, waited: () => undefined };

const ARRIVAL_BUCKETS_S = [30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400];

export class Metrics implements HttpObserver {
  readonly registry = new Registry();
  readonly cycles = new Counter({
    name: "signin_ingest_cycles_total",
    help: "Cycles by outcome (success, failure)",
    labelNames: ["tenant_id", "stream", "outcome"] as const,
    registers: [this.registry],
  });
  readonly pages = new Counter({
    name: "signin_ingest_pages_total",
    help: "Graph pages read and stored",
    labelNames: ["tenant_id", "stream"] as const,
    registers: [this.registry],
  });
  readonly windows = new Counter({
    name: "signin_ingest_windows_total",
    help: "Tail windows read completely (each committed with its checkpoint)",
    labelNames: ["tenant_id", "stream"] as const,
    registers: [this.registry],
  });
  readonly events = new Counter({
    name: "signin_ingest_events_total",
    help: "Events by result: inserted, updated (changed re-publish), unchanged, rejected",
    labelNames: ["tenant_id", "stream", "result"] as const,
    registers: [this.registry],
  });
  readonly httpResponses = new Counter({
    name: "signin_ingest_http_responses_total",
    help: "HTTP responses from Graph and the token endpoint, by status",
    labelNames: ["endpoint", "status"] as const,
    registers: [this.registry],
  });
  readonly throttled = new Counter({
    name: "signin_ingest_throttled_total",
    help: "HTTP 429 responses",
    labelNames: ["endpoint"] as const,
    registers: [this.registry],
  });
  readonly waitSeconds = new Counter({
    name: "signin_ingest_retry_wait_seconds_total",
    help: "Time spent waiting before retries: kind=retry_after (server asked) or backoff",
    labelNames: ["endpoint", "kind"] as const,
    registers: [this.registry],
  });
  readonly graphDateIgnored = new Counter({
    name: "signin_ingest_graph_date_ignored_total",
    help: "Date headers ignored as implausible (more than 24 h from the host clock; see src/graph/clock.ts)",
    labelNames: ["tenant_id"] as const,
    registers: [this.registry],
  });
  readonly tokenRenewals = new Counter({
    name: "signin_ingest_token_renewals_total",
    help: "Access tokens obtained",
    registers: [this.registry],
  });
  readonly arrivalLag = new Histogram({
    name: "signin_ingest_arrival_lag_seconds",
    help: "How long after createdDateTime an event was first stored (Graph latency + polling delay)",
    labelNames: ["tenant_id", "stream"] as const,
    buckets: ARRIVAL_BUCKETS_S,
    registers: [this.registry],
  });
  readonly upsertSeconds = new Histogram({
    name: "signin_ingest_upsert_duration_seconds",
    help: "Time to store one page (one transaction)",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly cycleSeconds = new Histogram({
    name: "signin_ingest_cycle_duration_seconds",
    help: "Duration of cycles",
    labelNames: ["tenant_id", "stream", "outcome"] as const,
    buckets: [0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800],
    registers: [this.registry],
  });
  /** Checkpoints and last successes, kept here so the gauges below are computed at scrape time. */
  readonly #checkpoints = new Map<string, { tenantId: string; stream: string; position: Date }>();
  readonly #lastSuccess = new Map<string, { tenantId: string; stream: string; at: Date }>();

  constructor(options: { retentionMs: number; now?: () => Date; defaultMetrics?: boolean }) {
    const now = options.now ?? (() => new Date());
    const checkpoints = this.#checkpoints;
    const successes = this.#lastSuccess;
    new Gauge({
      name: "signin_ingest_checkpoint_lag_seconds",
      help: "Now minus the checkpoint: how far behind the stored copy is",
      labelNames: ["tenant_id", "stream"] as const,
      registers: [this.registry],
      collect() {
        for (const c of checkpoints.values()) {
          this.set({ tenant_id: c.tenantId, stream: c.stream }, (now().getTime() - c.position.getTime()) / 1000);
        }
      },
    });
    new Gauge({
      name: "signin_ingest_retention_headroom_seconds",
      help: "Time left before events just after the checkpoint fall out of Graph's retention (GRAPH_RETENTION)",
      labelNames: ["tenant_id", "stream"] as const,
      registers: [this.registry],
      collect() {
        for (const c of checkpoints.values()) {
          const left = c.position.getTime() + options.retentionMs - now().getTime();
          this.set({ tenant_id: c.tenantId, stream: c.stream }, left / 1000);
        }
      },
    });
    new Gauge({
      name: "signin_ingest_last_success_timestamp_seconds",
      help: "Unix time of the last successful cycle",
      labelNames: ["tenant_id", "stream"] as const,
      registers: [this.registry],
      collect() {
        for (const s of successes.values()) {
          this.set({ tenant_id: s.tenantId, stream: s.stream }, s.at.getTime() / 1000);
        }
      },
    });
    if (options.defaultMetrics !== false) {
      collectDefaultMetrics({ register: this.registry, prefix: "signin_ingest_" });
    }
  }

  response(endpoint: Endpoint, status: number): void {
    this.httpResponses.inc({ endpoint, status: String(status) });
    if (status === 429) {
      this.throttled.inc({ endpoint });
    }
  }

  waited(endpoint: Endpoint, ms: number, kind: "retry_after" | "backoff"): void {
    this.waitSeconds.inc({ endpoint, kind }, ms / 1000);
  }

  checkpoint(tenantId: string, stream: string, position: Date): void {
    this.#checkpoints.set(`${tenantId}/${stream}`, { tenantId, stream, position });
  }

  success(tenantId: string, stream: string, at: Date): void {
    this.#lastSuccess.set(`${tenantId}/${stream}`, { tenantId, stream, at });
  }

  /** The most recent successful cycle of any (tenant, stream), for readiness. */
  lastSuccessAt(): Date | undefined {
    let latest: Date | undefined;
    for (const s of this.#lastSuccess.values()) {
      if (!latest || s.at > latest) {
        latest = s.at;
      }
    }
    return latest;
  }
}
