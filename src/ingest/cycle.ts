// One cycle for one (tenant, stream): plan windows from the checkpoint, read every page of each window, store each
// page in its own transaction, and move the checkpoint in the same transaction as a window's last page.

import { randomUUID } from "node:crypto";

import { coerceError, TemporaryError } from "../errors.ts";
import type { StreamSpec } from "../events/streams.ts";
import type { GraphClient } from "../graph/client.ts";
import { SKEW_WARNING_MS } from "../graph/clock.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import { type CycleOutcome, readCheckpoint, recordCycle, writeCheckpoint } from "../store/checkpoints.ts";
import { type Pool, withQueryAbort, withTransaction } from "../store/db.ts";
import { type Clock, formatDuration } from "../time.ts";
import {
  addCounts,
  type Counts,
  emptyCounts,
  INTERACTIVE_STREAM,
  type ReaderDeps,
  readWindowSplitting,
} from "./reader.ts";
import { catchUp } from "./backfill.ts";
import { planWindows, type Window, type WindowSettings } from "./window.ts";

/** Recording a cycle's outcome gives up after this (the database may be what failed the cycle). */
const RECORD_TIMEOUT_MS = 10_000;

/** A gap of more windows than this is read by catch-up (concurrent slices) instead of window by window. */
const CATCH_UP_AFTER_WINDOWS = 4;

interface CycleSettings extends WindowSettings {
  cycleDeadlineMs: number;
}

export interface CycleDeps {
  db: Pool;
  graph: GraphClient;
  log: Logger;
  /** The host clock; Graph's Date header corrects it through graph.clock. */
  clock: Clock;
  settings: CycleSettings;
  tenantId: string;
  stream?: StreamSpec;
  /** Aborted on shutdown: in-flight HTTP stops and the open transaction rolls back. */
  signal: AbortSignal;
  /** Aborted when this replica loses the stream's lease: the cycle stops as on shutdown, but counts as failed. */
  lease?: AbortSignal;
  /**
   * How windows are read and stored (the Ingester's readerDepsFor: page size, page cap, the process's page budget),
   * the same wiring `backfill` and sweeps use.
   */
  reader: ReaderDeps;
  /** Prometheus metrics, when the ops listener is on. */
  metrics?: Metrics;
}

export interface CycleResult extends Counts {
  runId: string;
  windows: Window[];
  checkpoint: Date | undefined;
  /** The "now" the windows were planned from: the earlier of the host clock and Graph's believed Date header. */
  plannedAt: Date | undefined;
  ms: number;
}

/** Runs one complete cycle. Throws (classified) on failure; the checkpoint then stays where it was. */
export async function runCycle(deps: CycleDeps): Promise<CycleResult> {
  const stream = deps.stream ?? INTERACTIVE_STREAM;
  const runId = randomUUID();
  const log = deps.log.child({ tenant_id: deps.tenantId, stream: stream.name, run_id: runId });
  const startedAt = deps.clock.now();
  const deadline = AbortSignal.timeout(deps.settings.cycleDeadlineMs);
  // Every query of the cycle (src/store/db.ts withQueryAbort) is cancelled when any of these aborts.
  const signal = AbortSignal.any(deps.lease ? [deps.signal, deadline, deps.lease] : [deps.signal, deadline]);
  const result: CycleResult = {
    runId,
    windows: [],
    ...emptyCounts(),
    checkpoint: undefined,
    plannedAt: undefined,
    ms: 0,
  };
  try {
    await withQueryAbort(signal, () => readAndStore(deps, stream, log, signal, result));
    result.ms = deps.clock.now().getTime() - startedAt.getTime();
    log.info(
      {
        window_from: result.windows[0]?.from,
        window_to: result.windows.at(-1)?.to,
        windows: result.windows.length,
        pages: result.pages,
        fetched: result.fetched,
        inserted: result.inserted,
        updated: result.updated,
        unchanged: result.unchanged,
        rejected: result.rejected,
        checkpoint: result.checkpoint,
        planned_at: result.plannedAt,
        ms: result.ms,
      },
      "cycle complete",
    );
    await record(deps, stream, startedAt, result, undefined, log);
    observeCycle(deps, stream, "success", result);
    return result;
  } catch (thrown) {
    let error = coerceError(thrown);
    if (deps.lease?.aborted && !deps.signal.aborted) {
      error = coerceError(deps.lease.reason);
    } else if (deadline.aborted && !deps.signal.aborted) {
      error = new TemporaryError(`cycle deadline of ${formatDuration(deps.settings.cycleDeadlineMs)} exceeded`, {
        cause: error,
      });
    }
    result.ms = deps.clock.now().getTime() - startedAt.getTime();
    if (!deps.signal.aborted) {
      await record(deps, stream, startedAt, result, error, log);
      observeCycle(deps, stream, "failure", result);
    }
    throw error;
  }
}

async function readAndStore(
  deps: CycleDeps,
  stream: StreamSpec,
  log: Logger,
  signal: AbortSignal,
  result: CycleResult,
): Promise<void> {
  const { db, graph, settings, tenantId } = deps;
  // The database first: nothing is fetched that could not be stored. Then a token, whose response's Date header
  // tells us Graph's clock before we plan.
  const checkpoint = await readCheckpoint(db, tenantId, stream.name);
  await graph.prepare(signal);
  const now = graph.clock.now();
  const skew = graph.clock.offsetMs;
  if (skew !== undefined && Math.abs(skew) > SKEW_WARNING_MS) {
    log.warn({ skewMs: skew }, "host clock disagrees with Graph's Date header; using the earlier of the two");
  }
  const plan = planWindows(checkpoint, now, settings);
  result.plannedAt = now;
  if (plan.lost) {
    log.warn(
      { lost_from: plan.lost.from, lost_to: plan.lost.to },
      "the checkpoint is older than Graph's retention: events in this range can no longer be read",
    );
  }
  result.windows = plan.windows;
  result.checkpoint = checkpoint;
  if (checkpoint) {
    deps.metrics?.checkpoint(tenantId, stream.name, checkpoint);
  }
  const { reader } = deps;
  const first = plan.windows[0];
  const last = plan.windows.at(-1);
  if (first && last && plan.windows.length > CATCH_UP_AFTER_WINDOWS) {
    // A long gap (downtime): read it in concurrent slices within the budget, as a backfill does, then move the
    // checkpoint once the coverage ledger shows the whole gap read.
    log.info({ window_from: first.from, window_to: last.to, windows: plan.windows.length }, "catching up a long gap");
    const caught = await catchUp(reader, stream, first.from, last.to, {
      log,
      signal,
      settledMs: settings.overlapMs,
      reader: "tail",
      maxSliceMs: settings.maxWindowMs,
    });
    addCounts(result, caught);
    await withTransaction(db, (client) => writeCheckpoint(client, tenantId, stream.name, last.to, deps.clock.now()));
    result.checkpoint = last.to;
    deps.metrics?.windows.inc({ tenant_id: tenantId, stream: stream.name }, plan.windows.length);
    return;
  }
  for (const window of plan.windows) {
    await readWindowSplitting(
      reader,
      stream,
      window,
      { log, signal, reader: "tail", priority: "tail", moveCheckpoint: true },
      result,
    );
    result.checkpoint = window.to;
    deps.metrics?.windows.inc({ tenant_id: tenantId, stream: stream.name });
  }
}

function observeCycle(deps: CycleDeps, stream: StreamSpec, outcome: CycleOutcome, result: CycleResult): void {
  const m = deps.metrics;
  if (!m) {
    return;
  }
  const labels = { tenant_id: deps.tenantId, stream: stream.name };
  m.cycles.inc({ ...labels, outcome });
  m.cycleSeconds.observe({ ...labels, outcome }, result.ms / 1000);
  if (result.checkpoint) {
    m.checkpoint(deps.tenantId, stream.name, result.checkpoint);
  }
  if (outcome === "success") {
    m.success(deps.tenantId, stream.name, deps.clock.now());
  }
}

async function record(
  deps: CycleDeps,
  stream: StreamSpec,
  startedAt: Date,
  result: CycleResult,
  error: Error | undefined,
  log: Logger,
): Promise<void> {
  try {
    await withQueryAbort(AbortSignal.timeout(RECORD_TIMEOUT_MS), () =>
      recordCycle(deps.db, {
        tenantId: deps.tenantId,
        stream: stream.name,
        startedAt,
        finishedAt: deps.clock.now(),
        outcome: error ? "failure" : "success",
        windowFrom: result.windows[0]?.from,
        windowTo: result.windows.at(-1)?.to,
        pages: result.pages,
        fetched: result.fetched,
        inserted: result.inserted,
        updated: result.updated,
        unchanged: result.unchanged,
        rejected: result.rejected,
        error: error?.message,
      }),
    );
  } catch (recordError) {
    log.warn({ err: recordError }, "could not record the cycle in the cycles table");
  }
}
