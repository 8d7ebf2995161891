// Tiered re-scans. The tail re-reads only OVERLAP before its checkpoint; events Graph publishes later than that
// (MFA aggregation, risk re-publishes: up to hours) are caught by sweeps of older windows, e.g. the last 3 hours
// every hour and the last 2 days every day. Sweeps run at backfill priority, so the tail always keeps its share of
// the throttle budget, and each records how many events it rescued.

import type { SweepTier } from "../config.ts";
import type { StreamSpec } from "../events/streams.ts";
import type { Logger } from "../log.ts";
import { earliestTailCoverage, freshlyCovered } from "../store/coverage.ts";
import type { Pool } from "../store/db.ts";
import { floorSecond } from "../time.ts";
import { type Counts, emptyCounts, type ReaderDeps, readWindowSplitting } from "./reader.ts";

const LAST_SWEEPS = `
select tier, max(started_at) as last from sweep_runs where tenant_id = $1 and stream = $2 group by tier`;

const RECORD_SWEEP = `
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

async function lastSweeps(db: Pool, tenantId: string, stream: string): Promise<Map<string, Date>> {
  const result = await db.query<{ tier: string; last: Date }>(LAST_SWEEPS, [tenantId, stream]);
  return new Map(result.rows.map((r) => [r.tier, r.last]));
}

/** Reads one sweep window (split into MAX_WINDOW chunks) and records the run. */
async function runSweep(
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

export interface SweepSettings {
  sweeps: readonly SweepTier[];
  overlapMs: number;
  maxWindowMs: number;
}

/**
 * Starts the due sweep tier of each (tenant, stream) after its cycle, at most one sweep per pair at a time. In the
 * background (`run`: sweeps run beside the schedule) or awaited (`once`: after the tail, before returning).
 */
export class Sweeper {
  readonly #settings: SweepSettings;
  readonly #log: Logger;
  readonly #background: boolean;
  readonly #running = new Map<string, Promise<void>>();

  constructor(settings: SweepSettings, log: Logger, options: { background?: boolean } = {}) {
    this.#settings = settings;
    this.#log = log;
    this.#background = options.background ?? false;
  }

  /** Starts the due tier of `stream`, if any, given the checkpoint the tail's cycle ended at. */
  async sweep(
    reader: ReaderDeps,
    stream: StreamSpec,
    checkpoint: Date | undefined,
    signal: AbortSignal,
  ): Promise<void> {
    const { sweeps, overlapMs, maxWindowMs } = this.#settings;
    const key = `${reader.tenantId}/${stream.name}`;
    if (sweeps.length === 0 || this.#running.has(key)) {
      return;
    }
    const db = reader.db;
    const now = reader.graph.clock.now();
    const due = dueSweeps(sweeps, await lastSweeps(db, reader.tenantId, stream.name), now);
    const tier = due[0];
    const earliest = await earliestTailCoverage(db, reader.tenantId, stream.name);
    if (!tier || !checkpoint || !earliest) {
      return;
    }
    const window = sweepWindow(tier, now, new Date(checkpoint.getTime() - overlapMs), earliest);
    // The longest due tier is read; the shorter due ones are inside it and are recorded as done with it.
    const markDone = async (tiers: readonly SweepTier[], w: { from: Date; to: Date }) => {
      for (const t of tiers) {
        await db.query(RECORD_SWEEP, [reader.tenantId, stream.name, t.name, now, now, w.from, w.to, 0, 0, 0, 0]);
      }
    };
    if (!window) {
      await markDone(due, { from: now, to: now });
      return;
    }
    if (await freshlyCovered(db, reader.tenantId, stream.name, window, new Date(now.getTime() - tier.everyMs))) {
      // Just read (e.g. by the first cycle's lookback): done without spending the budget.
      await markDone(due, window);
      return;
    }
    const log = this.#log;
    const running = runSweep(reader, stream, tier, window, { log, signal, maxWindowMs })
      .then(() => markDone(due.slice(1), window))
      .catch((error: unknown) => {
        if (!signal.aborted) {
          log.warn(
            { err: error, tenant_id: reader.tenantId, stream: stream.name, sweep: tier.name },
            "sweep failed; it runs again next tick",
          );
        }
      })
      .finally(() => this.#running.delete(key));
    this.#running.set(key, running);
    if (!this.#background) {
      await running;
    }
  }

  /** Waits for the sweeps still running. */
  async settled(): Promise<void> {
    await Promise.all(this.#running.values());
  }
}
