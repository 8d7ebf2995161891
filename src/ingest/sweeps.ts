// Tiered re-scans. The tail re-reads only OVERLAP before its checkpoint; events Graph publishes later than that
// (MFA aggregation, risk re-publishes: up to hours) are caught by sweeps of older windows, e.g. the last 3 hours
// every hour and the last 2 days every day. Sweeps run at backfill priority, so the tail always keeps its share of
// the throttle budget, and each records how many events it rescued.

import type { SweepTier } from "../config.ts";
import type { Logger } from "../log.ts";
import type { Pool } from "../store/db.ts";
import { floorSecond } from "../time.ts";
import { type Counts, emptyCounts, type ReaderDeps, readWindowSplitting, type StreamSpec } from "./reader.ts";

export const LAST_SWEEPS = `
select tier, max(started_at) as last from sweep_runs where tenant_id = $1 and stream = $2 group by tier`;

export const RECORD_SWEEP = `
insert into sweep_runs (tenant_id, stream, tier, started_at, finished_at, window_from, window_to, pages, fetched,
  rescued, updated)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`;

/** The tiers due at `now`, given when each last ran (pure), longest first: running it covers the others. */
export function dueSweeps(tiers: readonly SweepTier[], lastRuns: ReadonlyMap<string, Date>, now: Date): SweepTier[] {
  const due = tiers.filter((t) => {
    const last = lastRuns.get(t.name);
    return last === undefined || now.getTime() - last.getTime() >= t.everyMs;
  });
  return due.sort((a, b) => b.spanMs - a.spanMs);
}

/**
 * The window a sweep re-reads: [now − span, tailStart], where `tailStart` is where the tail's own overlap begins,
 * and never before `earliest` (where the tail's coverage begins: sweeps re-read, they do not backfill).
 */
export function sweepWindow(
  tier: SweepTier,
  now: Date,
  tailStart: Date,
  earliest: Date,
): { from: Date; to: Date } | undefined {
  const from = new Date(Math.max(floorSecond(now.getTime() - tier.spanMs), earliest.getTime()));
  return from < tailStart ? { from, to: tailStart } : undefined;
}

export async function lastSweeps(db: Pool, tenantId: string, stream: string): Promise<Map<string, Date>> {
  const result = await db.query<{ tier: string; last: Date }>(LAST_SWEEPS, [tenantId, stream]);
  return new Map(result.rows.map((r) => [r.tier, r.last]));
}

/** Reads one sweep window (split into MAX_WINDOW chunks) and records the run. */
export async function runSweep(
  deps: ReaderDeps,
  stream: StreamSpec,
  tier: SweepTier,
  window: { from: Date; to: Date },
  options: { log: Logger; signal: AbortSignal; maxWindowMs: number },
): Promise<Counts> {
  const log = options.log.child({ tenant_id: deps.tenantId, stream: stream.name, sweep: tier.name });
  const startedAt = deps.clock.now();
  const counts = emptyCounts();
  for (let from = window.from.getTime(); from < window.to.getTime(); from += options.maxWindowMs) {
    const chunk = { from: new Date(from), to: new Date(Math.min(window.to.getTime(), from + options.maxWindowMs)) };
    await readWindowSplitting(
      deps,
      stream,
      chunk,
      { log, signal: options.signal, reader: "sweep", priority: "backfill" },
      counts,
    );
  }
  await deps.db.query(RECORD_SWEEP, [
    deps.tenantId,
    stream.name,
    tier.name,
    startedAt,
    deps.clock.now(),
    window.from,
    window.to,
    counts.pages,
    counts.fetched,
    counts.inserted,
    counts.updated,
  ]);
  log.info(
    {
      window_from: window.from,
      window_to: window.to,
      pages: counts.pages,
      fetched: counts.fetched,
      rescued: counts.inserted,
      updated: counts.updated,
    },
    "sweep complete",
  );
  return counts;
}
