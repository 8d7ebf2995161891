// `status`: per tenant and stream, how far the copy is, how the last cycle went, and whether data is at risk of
// falling out of Graph's retention before it is read.

import type { Pool } from "./store/db.ts";
import { formatDuration } from "./time.ts";

// Every configured (tenant, stream) ($1, $2: parallel arrays), and every one the database knows, even before its
// first success.
const STATUS_QUERY = `
with streams as (
  select tenant_id, stream from unnest($1::text[], $2::text[]) as configured (tenant_id, stream)
  union select tenant_id, stream from checkpoints
  union select tenant_id, stream from cycles
  union select tenant_id, stream from stream_leases where stream not like '%/%'
),
lease as (
  select l.tenant_id, l.stream, l.holder, l.expires_at, l.expires_at > now() as live, r.kind, r.host, r.pid
  from stream_leases l left join replicas r on r.id = l.holder
),
last_cycle as (
  select distinct on (tenant_id, stream) tenant_id, stream, finished_at, outcome, error, inserted, updated, pages
  from cycles order by tenant_id, stream, finished_at desc
),
last_success as (
  select tenant_id, stream, max(finished_at) as at from cycles where outcome = 'success' group by 1, 2
),
stored as (
  select tenant_id, stream, count(*) as events, max(created_date_time) as newest from sign_ins group by 1, 2
),
rejected as (
  select tenant_id, stream, count(*) as rejected from rejected_events group by 1, 2
)
select s.tenant_id, s.stream, c.position as checkpoint, lc.finished_at as last_cycle_at, lc.outcome as last_outcome,
       lc.error as last_error, ls.at as last_success_at, coalesce(st.events, 0)::bigint as events,
       st.newest as newest_event, coalesce(r.rejected, 0)::bigint as rejected,
       tc.ok as check_ok, tc.checked_at,
       le.holder as lease_holder, le.expires_at as lease_expires_at, le.live as lease_live, le.kind as lease_kind,
       le.host as lease_host, le.pid as lease_pid
from streams s
left join checkpoints c using (tenant_id, stream)
left join last_cycle lc using (tenant_id, stream)
left join last_success ls using (tenant_id, stream)
left join stored st using (tenant_id, stream)
left join rejected r using (tenant_id, stream)
left join tenant_checks tc using (tenant_id)
left join lease le using (tenant_id, stream)
order by 1, 2`;

// Arrival lag: how long after createdDateTime each event was first stored, for events created after the stream's
// first cycle began or first seen after it ended (the initial lookback would otherwise count history as "lag"). Operators set OVERLAP and
// SWEEPS from these figures instead of guessing.
const ARRIVAL_LAG_QUERY = `
with first_cycle as (
  select tenant_id, stream, min(started_at) as started, min(finished_at) filter (where outcome = 'success') as finished
  from cycles group by 1, 2
)
select s.tenant_id, s.stream, count(*)::bigint as events,
       percentile_cont(array[0.5, 0.95, 0.99]) within group (
         order by extract(epoch from s.first_seen_at - s.created_date_time)) as lag_seconds,
       max(extract(epoch from s.first_seen_at - s.created_date_time)) as max_lag_seconds
from sign_ins s join first_cycle f using (tenant_id, stream)
where (s.created_date_time >= f.started or s.first_seen_at > f.finished)
  and s.created_date_time > $1::timestamptz - interval '7 days'
group by 1, 2`;

const SWEEP_QUERY = `
select tenant_id, stream, tier, count(*) filter (where pages > 0)::int as runs, coalesce(sum(rescued), 0)::int as rescued,
       max(started_at) as last_run
from sweep_runs group by 1, 2, 3 order by 1, 2, 3`;

interface ArrivalLag {
  events: number;
  p50Seconds: number | null;
  p95Seconds: number | null;
  p99Seconds: number | null;
  maxSeconds: number | null;
}

interface SweepStatus {
  tier: string;
  runs: number;
  rescued: number;
  lastRun: string | null;
}

export interface StreamStatus {
  tenantId: string;
  stream: string;
  checkpoint: string | null;
  /** Now minus checkpoint, in seconds. */
  lagSeconds: number | null;
  /** Data with createdDateTime up to here is complete (everything Graph showed was stored). */
  completeUpTo: string | null;
  lastCycleAt: string | null;
  /** success or failure of the last cycle; null when no cycle of it ever ended (see `configured`, `lease`). */
  lastOutcome: string | null;
  lastError: string | null;
  lastSuccessAt: string | null;
  events: number;
  rejected: number;
  /** Seconds until events just after the checkpoint leave Graph's retention; negative means already lost. */
  retentionHeadroomSeconds: number | null;
  retentionRisk: "ok" | "at-risk" | "lost" | "unknown";
  /** Arrival lag of events created in the last 7 days (since the stream started). */
  arrivalLag: ArrivalLag;
  /** The tenant's latest `check`: passed or not, and when (null when never checked). */
  lastCheck: { ok: boolean; at: string } | null;
  /** Per sweep tier: how often it read and how many late events it rescued. */
  sweeps: SweepStatus[];
  /** In this process's configuration (TENANTS_FILE / AZURE_TENANT_ID and STREAMS), when that could be read. */
  configured: boolean;
  /** The replica that polls it (lease in stream_leases); `live` false when it expired without a successor. */
  lease: LeaseStatus | null;
}

interface LeaseStatus {
  holder: string;
  kind: string | null;
  host: string | null;
  pid: number | null;
  expiresAt: string;
  live: boolean;
}

interface StatusRow {
  tenant_id: string;
  stream: string;
  checkpoint: Date | null;
  last_cycle_at: Date | null;
  last_outcome: string | null;
  last_error: string | null;
  last_success_at: Date | null;
  events: string;
  rejected: string;
  check_ok: boolean | null;
  checked_at: Date | null;
  lease_holder: string | null;
  lease_expires_at: Date | null;
  lease_live: boolean | null;
  lease_kind: string | null;
  lease_host: string | null;
  lease_pid: number | null;
}

export async function readStatus(
  db: Pool,
  now: Date,
  retentionMs: number,
  configured: ReadonlyArray<{ tenantId: string; stream: string }> = [],
): Promise<StreamStatus[]> {
  const result = await db.query<StatusRow>(STATUS_QUERY, [
    configured.map((c) => c.tenantId),
    configured.map((c) => c.stream),
  ]);
  const lags = await db.query<{
    tenant_id: string;
    stream: string;
    events: string;
    lag_seconds: number[] | null;
    max_lag_seconds: number | null;
  }>(ARRIVAL_LAG_QUERY, [now]);
  const sweeps = await db.query<{
    tenant_id: string;
    stream: string;
    tier: string;
    runs: number;
    rescued: number;
    last_run: Date;
  }>(SWEEP_QUERY);
  const round = (n: number | null | undefined) => (n === null || n === undefined ? null : Math.round(Number(n)));
  return result.rows.map((row) => {
    const lag = lags.rows.find((l) => l.tenant_id === row.tenant_id && l.stream === row.stream);
    const headroom = row.checkpoint ? (row.checkpoint.getTime() + retentionMs - now.getTime()) / 1000 : null;
    return {
      tenantId: row.tenant_id,
      stream: row.stream,
      checkpoint: row.checkpoint?.toISOString() ?? null,
      lagSeconds: row.checkpoint ? Math.round((now.getTime() - row.checkpoint.getTime()) / 1000) : null,
      completeUpTo: row.checkpoint?.toISOString() ?? null,
      lastCycleAt: row.last_cycle_at?.toISOString() ?? null,
      lastOutcome: row.last_outcome,
      lastError: row.last_error,
      lastSuccessAt: row.last_success_at?.toISOString() ?? null,
      events: Number(row.events),
      rejected: Number(row.rejected),
      retentionHeadroomSeconds: headroom === null ? null : Math.round(headroom),
      retentionRisk:
        headroom === null ? "unknown" : headroom <= 0 ? "lost" : headroom < retentionMs / 1000 / 4 ? "at-risk" : "ok",
      lastCheck:
        row.check_ok === null || row.checked_at === null
          ? null
          : { ok: row.check_ok, at: row.checked_at.toISOString() },
      arrivalLag: {
        events: Number(lag?.events ?? 0),
        p50Seconds: round(lag?.lag_seconds?.[0]),
        p95Seconds: round(lag?.lag_seconds?.[1]),
        p99Seconds: round(lag?.lag_seconds?.[2]),
        maxSeconds: round(lag?.max_lag_seconds),
      },
      sweeps: sweeps.rows
        .filter((s) => s.tenant_id === row.tenant_id && s.stream === row.stream)
        .map((s) => ({ tier: s.tier, runs: s.runs, rescued: s.rescued, lastRun: s.last_run.toISOString() })),
      configured: configured.some((c) => c.tenantId === row.tenant_id && c.stream === row.stream),
      lease:
        row.lease_holder === null || row.lease_expires_at === null
          ? null
          : {
              holder: row.lease_holder,
              kind: row.lease_kind,
              host: row.lease_host,
              pid: row.lease_pid,
              expiresAt: row.lease_expires_at.toISOString(),
              live: row.lease_live === true,
            },
    };
  });
}

/** A table for people. */
export function formatStatus(rows: readonly StreamStatus[]): string {
  if (rows.length === 0) {
    return "No tenant has been polled yet (run `node src/cli.ts once`).";
  }
  const header = [
    "tenant",
    "stream",
    "complete up to",
    "lag",
    "last cycle",
    "result",
    "events",
    "rejected",
    "retention",
    "arrival p50/p95/p99",
    "rescued by sweeps",
    "polled by",
  ];
  const lines = rows.map((r) => [
    r.tenantId,
    r.stream,
    r.completeUpTo ?? "-",
    r.lagSeconds === null ? "-" : formatDuration(r.lagSeconds * 1000),
    r.lastCycleAt ?? "-",
    r.lastOutcome === "failure"
      ? `failure: ${(r.lastError ?? "").slice(0, 60)}`
      : (r.lastOutcome ?? (r.lease?.live ? "running first cycle" : "never polled")),
    String(r.events),
    String(r.rejected),
    r.retentionRisk,
    r.arrivalLag.events === 0
      ? "-"
      : [r.arrivalLag.p50Seconds, r.arrivalLag.p95Seconds, r.arrivalLag.p99Seconds]
          .map((s) => formatDuration((s ?? 0) * 1000))
          .join("/"),
    String(r.sweeps.reduce((sum, s) => sum + s.rescued, 0)),
    r.lease === null
      ? "-"
      : `${r.lease.kind ?? "?"} ${r.lease.host ?? "?"}:${r.lease.pid ?? "?"}${r.lease.live ? "" : " (lease expired)"}`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? "").length)));
  const fmt = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd();
  return [fmt(header), fmt(widths.map((w) => "-".repeat(w))), ...lines.map(fmt)].join("\n");
}
