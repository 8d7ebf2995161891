// Backfill and catch-up: reads a long range of one stream as many time slices, several at a time, so that Graph's
// per-page latency overlaps and the throttle budget (not the wait for each page) sets the pace.
//
// - The range minus what the coverage ledger already holds is cut into slices lazily, oldest first (the oldest
//   data is the first to leave Graph's retention), by a SliceQueue (src/ingest/slice-queue.ts): the first slices
//   are `sliceMs` long, later ones about `pagesPerSlice` pages, and the last stretch is spread over all workers.
// - Each slice is one readWindow(reader "backfill"): every page in its own transaction, and the slice recorded in
//   the ledger with its last page. A crash loses at most the slices in flight; a re-run reads only the gaps.
// - A slice that fails temporarily (retries exhausted, timeout, page cap) or crawls longer than `sliceTimeoutMs`
//   is split in two and both halves are queued again; one that cannot be split is retried, then reported.
// - Concurrency is additive-increase / multiplicative-decrease: halved when Graph answers 429 (heard through
//   GraphBudget.onPenalty), raised by one per slice finished without one. The budget (GraphBudget.take in
//   GraphClient.getPage) paces the requests; with priority "backfill" it leaves the tail its reserved slots.

import { coerceError, EXIT, exitCodeFor, TemporaryError } from "../errors.ts";
import type { StreamSpec } from "../events/streams.ts";
import type { GraphBudget, Priority } from "../graph/budget.ts";
import type { Logger } from "../log.ts";
import { type Reader, uncoveredWindows } from "../store/coverage.ts";
import type { Pool } from "../store/db.ts";
import { ceilSecond, DAY, floorSecond, formatDuration, HOUR, MINUTE, SECOND } from "../time.ts";
import { addCounts, type Counts, emptyCounts, readWindow, type ReaderDeps } from "./reader.ts";
import { type Slice, SliceQueue } from "./slice-queue.ts";
import type { Window } from "./window.ts";

export interface BackfillDeps extends ReaderDeps {
  /** The budget the GraphClient takes from; its 429 penalties make the backfill lower its concurrency. */
  budget?: GraphBudget;
}

export interface BackfillOptions {
  log: Logger;
  signal: AbortSignal;
  /**
   * Most slices read at once (default 6; each holds at most two pages in memory, and the page budget admits only as
   * many as its bytes allow: PageBudget.sliceSlot).
   */
  concurrency?: number;
  /** Length of the first slices, before the event density is known (default 1 h). */
  sliceMs?: number;
  /** Slices are never cut or split below this (default 1 min). */
  minSliceMs?: number;
  /** Slices are never longer than this (default 1 day). */
  maxSliceMs?: number;
  /** Pages a slice should hold once the density is known (default 10). */
  pagesPerSlice?: number;
  /** A slice still crawling after this is abandoned and split (default 15 min). */
  sliceTimeoutMs?: number;
  /** Attempts for a slice that cannot be split any more (default 3). */
  maxAttempts?: number;
  /**
   * Ledger windows count as covered only when read at least this long after their end (default 0: any recorded
   * window). Catch-up passes the overlap, so windows the tail read while they were fresh are read again.
   */
  settledMs?: number;
  /** Budget priority of the requests (default "backfill", which leaves the tail its reserve). */
  priority?: Priority;
  /** Who the ledger names as reader (default "backfill"). */
  reader?: Reader;
  /** Called whenever a slice starts or ends. */
  onProgress?: (progress: BackfillProgress) => void;
}

export interface BackfillProgress {
  from: Date;
  to: Date;
  /** Length of the range still to read when the backfill started (the ledger already covered the rest). */
  totalMs: number;
  alreadyCoveredMs: number;
  /** Length of the slices read completely so far. */
  doneMs: number;
  slicesDone: number;
  slicesRunning: number;
  /** Slices done + running + queued + the estimate for the uncut rest. */
  slicesTotal: number;
  counts: Counts;
  /** Pages committed by slices still running (not yet in counts). */
  pagesInFlight: number;
  elapsedMs: number;
  eventsPerSecond: number;
  etaMs: number | undefined;
  concurrency: number;
  throttled: number;
  splits: number;
  finished: boolean;
}

export interface BackfillResult extends Counts {
  from: Date;
  to: Date;
  slices: number;
  splits: number;
  /** 429 penalties seen while the backfill ran. */
  throttled: number;
  alreadyCoveredMs: number;
  ms: number;
}

const DEFAULTS = {
  concurrency: 6,
  sliceMs: HOUR,
  minSliceMs: MINUTE,
  maxSliceMs: DAY,
  pagesPerSlice: 10,
  sliceTimeoutMs: 15 * MINUTE,
  maxAttempts: 3,
};

/** The parts of [from, to] the ledger does not show as read (and settled), oldest first, in whole seconds. */
export async function gapsToRead(
  db: Pool,
  tenantId: string,
  stream: string,
  from: Date,
  to: Date,
  settledMs = 0,
): Promise<Window[]> {
  const gaps: Window[] = [];
  for (const gap of await uncoveredWindows(db, tenantId, stream, from, to, settledMs)) {
    const gapFrom = Math.max(from.getTime(), floorSecond(gap.from.getTime()));
    const gapTo = Math.min(to.getTime(), ceilSecond(gap.to.getTime()));
    if (gapFrom < gapTo) {
      gaps.push({ from: new Date(gapFrom), to: new Date(gapTo) });
    }
  }
  return gaps;
}

/** Reads every part of [from, to] of `stream` that the ledger does not cover yet. Throws when any part failed. */
export async function runBackfill(
  deps: BackfillDeps,
  stream: StreamSpec,
  from: Date,
  to: Date,
  options: BackfillOptions,
): Promise<BackfillResult> {
  const settings = { ...DEFAULTS, ...definedOnly(options) };
  const started = performance.now();
  const rangeFrom = floorSecond(from.getTime());
  const rangeTo = floorSecond(to.getTime());
  const log = options.log.child({ tenant_id: deps.tenantId, stream: stream.name });
  const gaps =
    rangeTo > rangeFrom
      ? await gapsToRead(
          deps.db,
          deps.tenantId,
          stream.name,
          new Date(rangeFrom),
          new Date(rangeTo),
          settings.settledMs ?? 0,
        )
      : [];
  const totalMs = gaps.reduce((sum, g) => sum + (g.to.getTime() - g.from.getTime()), 0);
  const alreadyCoveredMs = Math.max(0, rangeTo - rangeFrom - totalMs);
  log.info(
    {
      from: new Date(rangeFrom),
      to: new Date(rangeTo),
      gaps: gaps.length,
      to_read: formatDuration(totalMs),
      already_covered: formatDuration(alreadyCoveredMs),
      concurrency: settings.concurrency,
    },
    "backfill starting",
  );

  const pages = deps.pageBudget;
  const queue = new SliceQueue(gaps, {
    sliceMs: settings.sliceMs,
    minSliceMs: settings.minSliceMs,
    maxSliceMs: settings.maxSliceMs,
    targetEvents: settings.pagesPerSlice * deps.pageSize,
  });
  const counts = emptyCounts();
  const limit = new ConcurrencyLimit(settings.concurrency, deps.budget?.limits.windowMs ?? 10 * SECOND);
  const controller = new AbortController();
  const signal = AbortSignal.any([options.signal, controller.signal]);
  const running = new Map<Promise<void>, Slice>();
  const failures: Array<{ slice: Slice; error: Error }> = [];
  let fatal: Error | undefined;
  let doneMs = 0;
  let slicesDone = 0;
  let splits = 0;
  let pagesInFlight = 0;

  // The last stretch is cut for the slices that can run at once: the concurrency limit, and what the page budget
  // holds (PageBudget.slicesThatFit; more, smaller slices would only add requests for partly filled pages).
  const nextSlice = (): Slice | undefined =>
    queue.next(
      { slicesDone, doneMs, fetched: counts.fetched },
      Math.min(limit.value, pages.slicesThatFit(deps.pageSize)),
    );

  const progress = (finished: boolean): BackfillProgress => {
    const elapsedMs = performance.now() - started;
    const queued = queue.queued();
    return {
      from: new Date(rangeFrom),
      to: new Date(rangeTo),
      totalMs,
      alreadyCoveredMs,
      doneMs,
      slicesDone,
      slicesRunning: running.size,
      slicesTotal: slicesDone + running.size + queued,
      counts: { ...counts },
      pagesInFlight,
      elapsedMs,
      eventsPerSecond: elapsedMs > 0 ? (counts.fetched * 1000) / elapsedMs : 0,
      etaMs: doneMs > 0 && elapsedMs > 0 ? ((totalMs - doneMs) * elapsedMs) / doneMs : undefined,
      concurrency: limit.value,
      throttled: limit.throttled,
      splits,
      finished,
    };
  };
  const report = (finished = false) => options.onProgress?.(progress(finished));

  const readSlice = async (slice: Slice): Promise<void> => {
    slice.attempts++;
    const sliceTimeout = AbortSignal.timeout(settings.sliceTimeoutMs);
    const sliceSignal = AbortSignal.any([signal, sliceTimeout]);
    const inSlice = emptyCounts();
    let pages = 0;
    const sliceDeps: ReaderDeps = {
      ...deps,
      afterPageCommit: async (pageNumber) => {
        pages++;
        pagesInFlight++;
        await deps.afterPageCommit?.(pageNumber);
      },
    };
    const sliceStarted = performance.now();
    try {
      await readWindow(
        sliceDeps,
        stream,
        slice,
        {
          log,
          signal: sliceSignal,
          reader: settings.reader ?? "backfill",
          priority: settings.priority ?? "backfill",
          // A slice alone in the process fetches ahead (it overlaps its own store); beside others, of this backfill
          // or of another tenant's or stream's, it does not (ReadOptions.prefetch).
          prefetch: () => deps.pageBudget.slices <= 1,
        },
        inSlice,
      );
      addCounts(counts, inSlice);
      doneMs += slice.to.getTime() - slice.from.getTime();
      slicesDone++;
      limit.succeeded();
      log.debug(
        {
          slice_from: slice.from,
          slice_to: slice.to,
          pages: inSlice.pages,
          events: inSlice.fetched,
          inserted: inSlice.inserted,
          ms: Math.round(performance.now() - sliceStarted),
        },
        "slice stored",
      );
    } catch (thrown) {
      const error = coerceError(thrown);
      if (signal.aborted) {
        fatal ??= options.signal.aborted ? coerceError(options.signal.reason) : error;
        return;
      }
      const timedOut = sliceTimeout.aborted;
      if (!timedOut && exitCodeFor(error) !== EXIT.temporary) {
        // Credentials, licence, permission, a protocol error: no other slice will fare better.
        fatal ??= error;
        controller.abort(error);
        return;
      }
      const reason = timedOut ? `still crawling after ${formatDuration(settings.sliceTimeoutMs)}` : error.message;
      if (queue.split(slice)) {
        splits++;
        log.warn({ slice_from: slice.from, slice_to: slice.to, pages, reason }, "slice failed; split in two");
      } else if (slice.attempts < settings.maxAttempts) {
        queue.retry(slice);
        log.warn(
          { slice_from: slice.from, slice_to: slice.to, attempt: slice.attempts, reason },
          "slice failed; retrying",
        );
      } else {
        failures.push({ slice, error });
        log.error({ slice_from: slice.from, slice_to: slice.to, err: error }, "slice failed; giving up on it");
      }
    } finally {
      pagesInFlight -= pages;
    }
  };

  const stopWatching = deps.budget?.onPenalty(() => limit.penalized(log));
  try {
    for (;;) {
      while (fatal === undefined && running.size < limit.value) {
        // Bounded by the bytes of pages too (PageBudget.sliceSlot): at least one slice, more while their pages fit.
        const slot = pages.sliceSlot(deps.pageSize, running.size === 0);
        if (!slot) {
          break;
        }
        const slice = nextSlice();
        if (!slice) {
          slot.release();
          break;
        }
        const task: Promise<void> = readSlice(slice).finally(() => {
          slot.release();
          running.delete(task);
          report();
        });
        running.set(task, slice);
      }
      if (running.size === 0) {
        break;
      }
      report();
      await Promise.race(running.keys());
    }
  } finally {
    stopWatching?.();
  }
  report(true);
  if (fatal) {
    throw fatal;
  }
  const ms = Math.round(performance.now() - started);
  if (failures.length > 0) {
    throw new TemporaryError(
      `${failures.length} slice(s) of the backfill failed (first: ${failures[0]?.slice.from.toISOString()}: ` +
        `${failures[0]?.error.message}); a re-run reads only what is still missing`,
    );
  }
  return {
    ...counts,
    from: new Date(rangeFrom),
    to: new Date(rangeTo),
    slices: slicesDone,
    splits,
    throttled: limit.throttled,
    alreadyCoveredMs,
    ms,
  };
}

/**
 * Catch-up after downtime, for the tail cycle: returns once [from, to] is covered in the ledger (throws otherwise);
 * the caller then moves the checkpoint to `to`. Reads at the tail's priority, since it is the tail's own work, and
 * re-reads windows that were read within `settledMs` (pass OVERLAP) of their end.
 */
export function catchUp(
  deps: BackfillDeps,
  stream: StreamSpec,
  from: Date,
  to: Date,
  options: BackfillOptions & { settledMs: number },
): Promise<BackfillResult> {
  return runBackfill(deps, stream, from, to, { priority: "tail", ...options });
}

/** Additive increase, multiplicative decrease, at most one decrease per budget window. */
class ConcurrencyLimit {
  value: number;
  throttled = 0;
  readonly #max: number;
  readonly #quietMs: number;
  #lastDecrease = -Infinity;

  constructor(max: number, quietMs: number) {
    this.#max = Math.max(1, Math.floor(max));
    this.value = this.#max;
    this.#quietMs = quietMs;
  }

  penalized(log: Logger): void {
    this.throttled++;
    const now = performance.now();
    if (now - this.#lastDecrease >= this.#quietMs && this.value > 1) {
      this.value = Math.max(1, Math.floor(this.value / 2));
      log.warn({ concurrency: this.value }, "Graph throttled a request (429); fewer slices at once");
    }
    this.#lastDecrease = now;
  }

  succeeded(): void {
    if (this.value < this.#max && performance.now() - this.#lastDecrease >= this.#quietMs) {
      this.value++;
    }
  }
}

function definedOnly<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as Partial<T>;
}
