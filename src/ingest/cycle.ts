// One cycle for one (tenant, stream): plan windows from the checkpoint, read every page of each window, store each
// page in its own transaction, and move the checkpoint in the same transaction as a window's last page.

import { randomUUID } from "node:crypto";

import { coerceError, TemporaryError } from "../errors.ts";
import type { GraphClient, Page } from "../graph/client.ts";
import { SKEW_WARNING_MS } from "../graph/clock.ts";
import { signInsUrl } from "../graph/signins.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import { readCheckpoint, recordCycle, writeCheckpoint } from "../store/checkpoints.ts";
import { type Pool, withTransaction } from "../store/db.ts";
import { ensurePartitions, insertRejected, type UpsertResult, upsertSignIns } from "../store/signins.ts";
import { type Clock, formatDuration } from "../time.ts";
import { sortEvents } from "./events.ts";
import { planWindows, type Window, type WindowSettings } from "./window.ts";

export interface StreamSpec {
  /** Stored in sign_ins.stream and used as the checkpoint key. */
  name: string;
  version: "v1.0" | "beta";
  extraFilter?: string;
}

export const INTERACTIVE_STREAM: StreamSpec = { name: "interactiveUser", version: "v1.0" };

export interface CycleSettings extends WindowSettings {
  graphEndpoint: string;
  pageSize: number;
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
  /** Prometheus metrics, when the ops listener is on. */
  metrics?: Metrics;
  /** Test hook: called after each page is committed (crash tests kill the process here). */
  afterPageCommit?: (pageNumber: number) => void | Promise<void>;
}

export interface CycleResult {
  runId: string;
  windows: Window[];
  pages: number;
  fetched: number;
  inserted: number;
  updated: number;
  unchanged: number;
  rejected: number;
  duplicates: number;
  checkpoint: Date | undefined;
  ms: number;
}

// A nextLink crawl longer than this is a loop, not a window (1,000 pages ≈ 1M events).
export const MAX_PAGES_PER_WINDOW = 20_000;

/** Runs one complete cycle. Throws (classified) on failure; the checkpoint then stays where it was. */
export async function runCycle(deps: CycleDeps): Promise<CycleResult> {
  const stream = deps.stream ?? INTERACTIVE_STREAM;
  const runId = randomUUID();
  const log = deps.log.child({ tenant_id: deps.tenantId, stream: stream.name, run_id: runId });
  const startedAt = deps.clock.now();
  const deadline = AbortSignal.timeout(deps.settings.cycleDeadlineMs);
  const signal = AbortSignal.any([deps.signal, deadline]);
  const result: CycleResult = {
    runId,
    windows: [],
    pages: 0,
    fetched: 0,
    inserted: 0,
    updated: 0,
    unchanged: 0,
    rejected: 0,
    duplicates: 0,
    checkpoint: undefined,
    ms: 0,
  };
  try {
    await readAndStore(deps, stream, log, signal, result);
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
        ms: result.ms,
      },
      "cycle complete",
    );
    await record(deps, stream, startedAt, result, undefined, log);
    observeCycle(deps, stream, "success", result);
    return result;
  } catch (thrown) {
    let error = coerceError(thrown);
    if (deadline.aborted && !deps.signal.aborted) {
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
  for (const window of plan.windows) {
    await readWindow(deps, stream, window, log, signal, result);
    result.checkpoint = window.to;
  }
}

async function readWindow(
  deps: CycleDeps,
  stream: StreamSpec,
  window: Window,
  log: Logger,
  signal: AbortSignal,
  result: CycleResult,
): Promise<void> {
  const { db, graph, settings } = deps;
  await withTransaction(db, (client) => ensurePartitions(client, window.from, window.to));
  const url = signInsUrl({
    graphEndpoint: settings.graphEndpoint,
    version: stream.version,
    from: window.from,
    to: window.to,
    top: settings.pageSize,
    ...(stream.extraFilter ? { extraFilter: stream.extraFilter } : {}),
  });
  const seen = new Set<string>();
  // While one page is being stored, the next one is already being fetched: at most two pages are in memory, and
  // Graph's latency overlaps PostgreSQL's work. A page is stored only after the previous one committed.
  const fetchPage = (pageUrl: string, pageNumber: number): Promise<Page> => {
    if (pageNumber > MAX_PAGES_PER_WINDOW || seen.has(pageUrl)) {
      return Promise.reject(
        new TemporaryError(`Graph's nextLinks for window ${window.from.toISOString()} loop or never end`),
      );
    }
    seen.add(pageUrl);
    const pending = graph.getPage(pageUrl, fetchSignal);
    pending.catch(() => undefined); // awaited below; never an unhandled rejection if storing fails first
    return pending;
  };
  const fetchController = new AbortController();
  const fetchSignal = AbortSignal.any([signal, fetchController.signal]);
  let pending: Promise<Page> | undefined = fetchPage(url, 1);
  try {
    for (let pageInWindow = 1; pending !== undefined; pageInWindow++) {
      signal.throwIfAborted();
      const page: Page = await pending;
      const next: string | undefined = page.nextLink;
      if (next !== undefined) {
        graph.assertGraphUrl(next);
      }
      pending = next === undefined ? undefined : fetchPage(next, pageInWindow + 1);
      await storePage(deps, stream, window, log, signal, result, page, next);
    }
  } finally {
    fetchController.abort(new Error("window finished"));
  }
}

async function storePage(
  deps: CycleDeps,
  stream: StreamSpec,
  window: Window,
  log: Logger,
  signal: AbortSignal,
  result: CycleResult,
  page: Page,
  next: string | undefined,
): Promise<void> {
  const { db, tenantId } = deps;
  const sorted = sortEvents(page.value);
  const seenAt = deps.clock.now();
  const storeStarted = performance.now();
  const counts = await withTransaction(db, async (client) => {
    const c = await upsertSignIns(client, tenantId, stream.name, sorted.valid, seenAt);
    await insertRejected(client, tenantId, stream.name, sorted.rejected, seenAt);
    if (next === undefined) {
      await writeCheckpoint(client, tenantId, stream.name, window.to, seenAt);
    }
    signal.throwIfAborted();
    return c;
  });
  observePage(deps, stream, (performance.now() - storeStarted) / 1000, counts, sorted.rejected.length, seenAt);
  result.pages++;
  result.fetched += page.value.length;
  result.inserted += counts.inserted;
  result.updated += counts.updated;
  result.unchanged += counts.unchanged;
  result.rejected += sorted.rejected.length;
  result.duplicates += sorted.duplicates;
  if (sorted.rejected.length > 0) {
    log.warn(
      {
        page: result.pages,
        rejected: sorted.rejected.length,
        reasons: [...new Set(sorted.rejected.map((r) => r.reason))],
      },
      "events set aside in rejected_events",
    );
  }
  log.debug(
    {
      page: result.pages,
      request_id: page.requestId,
      events: page.value.length,
      bytes: page.bytes,
      inserted: counts.inserted,
      updated: counts.updated,
      unchanged: counts.unchanged,
      last: next === undefined,
    },
    "page stored",
  );
  await deps.afterPageCommit?.(result.pages);
}

function observePage(
  deps: CycleDeps,
  stream: StreamSpec,
  seconds: number,
  counts: UpsertResult,
  rejected: number,
  seenAt: Date,
): void {
  const m = deps.metrics;
  if (!m) {
    return;
  }
  const labels = { tenant_id: deps.tenantId, stream: stream.name };
  m.upsertSeconds.observe(seconds);
  m.pages.inc(labels);
  m.events.inc({ ...labels, result: "inserted" }, counts.inserted);
  m.events.inc({ ...labels, result: "updated" }, counts.updated);
  m.events.inc({ ...labels, result: "unchanged" }, counts.unchanged);
  m.events.inc({ ...labels, result: "rejected" }, rejected);
  for (const created of counts.insertedCreatedAt) {
    m.arrivalLag.observe(labels, Math.max(0, (seenAt.getTime() - created.getTime()) / 1000));
  }
}

function observeCycle(deps: CycleDeps, stream: StreamSpec, outcome: "success" | "failure", result: CycleResult): void {
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
    await recordCycle(deps.db, {
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
    });
  } catch (recordError) {
    log.warn({ err: recordError }, "could not record the cycle in the cycles table");
  }
}
