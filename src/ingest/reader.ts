// Reads one window of one stream completely: follows every nextLink (fetching the next page while the current one
// is stored), stores each page in its own transaction, and in the transaction of the last page records the window
// in the coverage ledger and (for the tail) moves the checkpoint.

import { TemporaryError, WindowTooLargeError } from "../errors.ts";
import type { Priority } from "../graph/budget.ts";
import { type GraphClient, MalformedPageError, notJson, parsePage } from "../graph/client.ts";
import { auditLogUrl } from "../graph/audit-logs.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import { writeCheckpoint } from "../store/checkpoints.ts";
import { type Reader, recordCoverage } from "../store/coverage.ts";
import { type Pool, withTransaction } from "../store/db.ts";
import { freeSentBuffer } from "../store/page-query.ts";
import { ensureMonths, monthsBetween, monthsOf } from "../store/partitions.ts";
import {
  insertRejected,
  storedTexts,
  storeOrIsolate,
  upsertDirectoryAudits,
  upsertIsolating,
  type UpsertResult,
  upsertSignIns,
} from "../store/signins.ts";
import type { Clock } from "../time.ts";
import { pageEvents, type PageEvents, type RejectedEvent } from "../events/classify.ts";
import type { PageBudget, PageGrant } from "./page-budget.ts";
import { type StreamSpec, STREAMS } from "../events/streams.ts";
import type { Window } from "./window.ts";

/** The interactive stream as read by default (Graph beta; src/events/streams.ts). */
export const INTERACTIVE_STREAM: StreamSpec = STREAMS.interactiveUser;

// A nextLink crawl longer than this is a loop, not a window (20,000 pages ≈ 20M events).
const MAX_PAGES_PER_WINDOW = 20_000;

/** Graph's largest page: `$top` above it is clamped or refused (graph-api-notes: "Max = default = 1000"). */
const GRAPH_MAX_PAGE = 1000;

/**
 * The most events a page may hold before it is refused as malformed: `$top`, but never fewer than Graph's largest
 * page, since Graph has been seen to send more rows than a small `$top` asked for (microsoft-graph-docs #13729).
 */
function maxPageEvents(pageSize: number): number {
  return Math.max(pageSize, GRAPH_MAX_PAGE);
}

export interface ReaderDeps {
  db: Pool;
  graph: GraphClient;
  clock: Clock;
  tenantId: string;
  graphEndpoint: string;
  pageSize: number;
  /** A window whose crawl needs more pages is split (see readWindowSplitting); default MAX_PAGES_PER_WINDOW. */
  maxPagesPerWindow?: number;
  metrics?: Metrics;
  /** Test hook: called after each page is committed. */
  afterPageCommit?: (pageNumber: number) => void | Promise<void>;
  /** Bytes of pages in flight, shared by every reader of the process (one per Ingester: PAGE_MEMORY_BYTES). */
  pageBudget: PageBudget;
}

export interface ReadOptions {
  log: Logger;
  signal: AbortSignal;
  /** Who reads, as recorded in the coverage ledger. */
  reader: Reader;
  /**
   * Move the checkpoint to the window's end in its last page's transaction. Only for windows read in order, oldest
   * first (the tail's own windows): never for slices read concurrently, whose ends do not bound what is complete.
   */
  moveCheckpoint?: boolean;
  priority: Priority;
  /**
   * Whether the next page is fetched while this one is stored (asked at each page; default: yes). The fetch ahead
   * overlaps the store (~0.3 s for a page of real-sized sign-ins) with Graph's answer and holds one more page in
   * memory. Backfill and catch-up slices running beside others in the process skip it (src/ingest/backfill.ts,
   * PageBudget.slices): the other slices keep PostgreSQL busy, and against Graph's latency the fetch ahead hides
   * only the store (docs/benchmarks.md, change 14: a two-slice catch-up held ~10 MB less at the same speed).
   */
  prefetch?: () => boolean;
}

export interface Counts {
  pages: number;
  fetched: number;
  inserted: number;
  updated: number;
  unchanged: number;
  rejected: number;
  duplicates: number;
}

export function emptyCounts(): Counts {
  return { pages: 0, fetched: 0, inserted: 0, updated: 0, unchanged: 0, rejected: 0, duplicates: 0 };
}

/** Adds each count of `more` to `into` (only the counts: `more` may be a larger result, e.g. a backfill's). */
export function addCounts(into: Counts, more: Counts): void {
  for (const key of Object.keys(emptyCounts()) as Array<keyof Counts>) {
    into[key] += more[key];
  }
}

/**
 * A fetched page as it waits to be stored: its JSON text and which events to store. The parsed events are dropped
 * as soon as they are checked (they die young instead of being promoted while the previous page commits), and the
 * store sends the bytes as they came.
 */
interface FetchedPage {
  nextLink: string | undefined;
  requestId: string | undefined;
  bytes: number;
  /** Events in the page, stored or not. */
  length: number;
  events: PageEvents;
  rejected: RejectedEvent[];
  duplicates: number;
  /** The months (first instants) the stored events fall in: their partitions must exist before the page is written. */
  months: Date[];
  /** Its share of the page budget, released once it is stored (or abandoned). */
  grant: PageGrant;
}

/** Reads `window` of `stream` to its last page; adds to `counts`. Throws (nothing moves) on failure. */
export async function readWindow(
  deps: ReaderDeps,
  stream: StreamSpec,
  window: Window,
  options: ReadOptions,
  counts: Counts,
): Promise<void> {
  const { db, graph } = deps;
  // Partitions are created in transactions of their own, never in a page's (migrations/0017): the window's months
  // first, then any other month a page's events fall in (Graph should send none; hostile or skewed data might).
  const ensured = new Set<number>();
  const ensure = async (months: readonly Date[]) => {
    const missing = months.filter((m) => !ensured.has(m.getTime()));
    if (stream.resource === "signIns" && missing.length > 0) {
      await ensureMonths(db, missing);
    }
    for (const m of missing) {
      ensured.add(m.getTime());
    }
  };
  await ensure(monthsBetween(window.from, window.to, 1));
  const url = auditLogUrl({
    graphEndpoint: deps.graphEndpoint,
    version: stream.version,
    resource: stream.resource,
    from: window.from,
    to: window.to,
    top: deps.pageSize,
    ...(stream.extraFilter ? { extraFilter: stream.extraFilter } : {}),
  });
  const timeField = stream.resource === "signIns" ? "createdDateTime" : "activityDateTime";
  const seen = new Set<string>();
  const budget = deps.pageBudget;
  const fetchController = new AbortController();
  const fetchSignal = AbortSignal.any([options.signal, fetchController.signal]);
  // While one page is being stored, the next one is already being fetched: at most two pages are in memory, and
  // Graph's latency overlaps PostgreSQL's work. A page is stored only after the previous one committed.
  const fetchPage = (pageUrl: string, pageNumber: number): Promise<FetchedPage> => {
    const cap = deps.maxPagesPerWindow ?? MAX_PAGES_PER_WINDOW;
    const pending = seen.has(pageUrl)
      ? Promise.reject(new TemporaryError(`Graph's nextLinks for window ${window.from.toISOString()} loop`))
      : pageNumber > cap
        ? Promise.reject(
            new WindowTooLargeError(
              `window ${window.from.toISOString()}..${window.to.toISOString()} needs more than ${cap} pages`,
            ),
          )
        : graph.getPageBody(pageUrl, fetchSignal, options.priority).then(async (body): Promise<FetchedPage> => {
            // Parsed only once its bytes fit the process's page budget (the fetch itself never waits: a tenant whose
            // Graph hangs must not hold back the others); until then it is held as its bytes alone.
            const grant = await budget.acquire(body.bytes, fetchSignal);
            try {
              const page = parsePage(body);
              budget.observe(page.bytes, page.length);
              if (page.length > maxPageEvents(deps.pageSize)) {
                // More than $top and more than Graph's largest page: not a page Graph sends (a hostile or broken
                // peer); refused whole, like any malformed page.
                throw new MalformedPageError(
                  `Graph returned a page of ${page.length} events for $top=${deps.pageSize} (request-id ${page.requestId ?? "?"}); nothing from it is stored`,
                );
              }
              let classified: ReturnType<typeof pageEvents>;
              try {
                classified = pageEvents(page.scan, timeField);
              } catch (error) {
                throw error instanceof SyntaxError ? notJson(page) : error;
              }
              const { events, rejected, duplicates, valid } = classified;
              return {
                months: monthsOf(valid.map((e) => e.createdDateTime)),
                nextLink: page.nextLink,
                requestId: page.requestId,
                bytes: page.bytes,
                length: page.length,
                events,
                rejected,
                duplicates,
                grant,
              };
            } catch (error) {
              grant.release();
              throw error;
            }
          });
    seen.add(pageUrl);
    // Awaited in the loop below, possibly after the current page is stored: never an unhandled rejection meanwhile.
    pending.catch(() => undefined);
    return pending;
  };
  const inWindow = emptyCounts();
  let pending: Promise<FetchedPage> | undefined = fetchPage(url, 1);
  try {
    for (let pageNumber = 1; pending !== undefined; pageNumber++) {
      options.signal.throwIfAborted();
      const page: FetchedPage = await pending;
      const next: string | undefined = page.nextLink;
      if (next !== undefined) {
        graph.assertGraphUrl(next);
      }
      const fetchNext = () => (next === undefined ? undefined : fetchPage(next, pageNumber + 1));
      const ahead = options.prefetch?.() ?? true;
      pending = ahead ? fetchNext() : undefined;
      try {
        await ensure(page.months);
        await storePage(deps, stream, window, options, inWindow, page, next);
      } finally {
        page.grant.release();
        discard(page);
      }
      if (!ahead) {
        pending = fetchNext();
      }
    }
  } finally {
    fetchController.abort(new Error("window finished"));
    // A page fetched ahead for a window that failed is never stored: its bytes go back to the budget.
    pending?.then(
      (p) => {
        p.grant.release();
        discard(p);
      },
      () => undefined,
    );
  }
  addCounts(counts, inWindow);
}

/** A page stored or given up: its bytes are freed now, as its share of the page budget was (freeSentBuffer). */
function discard(page: FetchedPage): void {
  if (typeof page.events.text !== "string") {
    freeSentBuffer(page.events.text);
  }
}

async function storePage(
  deps: ReaderDeps,
  stream: StreamSpec,
  window: Window,
  options: ReadOptions,
  counts: Counts,
  page: FetchedPage,
  next: string | undefined,
): Promise<void> {
  const { db, tenantId } = deps;
  const upsert = stream.resource === "signIns" ? upsertSignIns : upsertDirectoryAudits;
  const seenAt = deps.clock.now();
  const storeStarted = performance.now();
  // The page in one statement; if PostgreSQL refuses its data all the same (something the checks in events.ts do
  // not foresee), the transaction is rolled back and the page stored again with the refused events isolated.
  const store = (isolate: boolean, failed: () => void) =>
    withTransaction(db, async (client) => {
      let c: UpsertResult;
      let rejected = page.rejected;
      if (isolate) {
        const isolated = await upsertIsolating(
          upsert,
          client,
          tenantId,
          stream.name,
          storedTexts(page.events),
          seenAt,
          stream.version,
        );
        rejected = [...page.rejected, ...isolated.rejected];
        c = isolated;
      } else {
        try {
          c = await upsert(client, tenantId, stream.name, page.events, seenAt, stream.version);
        } catch (error) {
          failed();
          throw error;
        }
      }
      await insertRejected(client, tenantId, stream.name, rejected, seenAt);
      if (next === undefined) {
        await recordCoverage(client, {
          tenantId,
          stream: stream.name,
          from: window.from,
          to: window.to,
          at: seenAt,
          events: counts.fetched + page.length,
          newEvents: counts.inserted + c.inserted,
          pages: counts.pages + 1,
          reader: options.reader,
        });
        if (options.moveCheckpoint) {
          await writeCheckpoint(client, tenantId, stream.name, window.to, seenAt);
        }
      }
      options.signal.throwIfAborted();
      return { ...c, rejected };
    });
  const stored = await storeOrIsolate(store, (error) =>
    options.log.warn(
      { page: counts.pages + 1, error: error.message, code: error.code },
      "PostgreSQL refused the page's data; storing it again with the refused events isolated",
    ),
  );
  const rejected = stored.rejected;
  observePage(deps, stream, (performance.now() - storeStarted) / 1000, stored, rejected.length, seenAt);
  counts.pages++;
  counts.fetched += page.length;
  counts.inserted += stored.inserted;
  counts.updated += stored.updated;
  counts.unchanged += stored.unchanged;
  counts.rejected += rejected.length;
  counts.duplicates += page.duplicates;
  if (rejected.length > 0) {
    options.log.warn(
      {
        page: counts.pages,
        rejected: rejected.length,
        reasons: [...new Set(rejected.map((r) => r.reason))].slice(0, 10),
      },
      "events set aside in rejected_events",
    );
  }
  options.log.debug(
    {
      page: counts.pages,
      request_id: page.requestId,
      events: page.length,
      bytes: page.bytes,
      inserted: stored.inserted,
      updated: stored.updated,
      unchanged: stored.unchanged,
      last: next === undefined,
    },
    "page stored",
  );
  await deps.afterPageCommit?.(counts.pages);
}

function observePage(
  deps: ReaderDeps,
  stream: StreamSpec,
  seconds: number,
  stored: UpsertResult,
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
  m.events.inc({ ...labels, result: "inserted" }, stored.inserted);
  m.events.inc({ ...labels, result: "updated" }, stored.updated);
  m.events.inc({ ...labels, result: "unchanged" }, stored.unchanged);
  m.events.inc({ ...labels, result: "rejected" }, rejected);
  for (const created of stored.insertedCreatedAt) {
    m.arrivalLag.observe(labels, Math.max(0, (seenAt.getTime() - created.getTime()) / 1000));
  }
}

/** Windows are not split below this. */
const MIN_SPLIT_MS = 60_000;

/**
 * Like readWindow, but a window Graph cannot serve whole (page cap reached, or timeouts after every retry) is split
 * in two halves, each read (and split again) oldest first, down to MIN_SPLIT_MS. Pages already stored stay stored.
 */
export async function readWindowSplitting(
  deps: ReaderDeps,
  stream: StreamSpec,
  window: Window,
  options: ReadOptions,
  counts: Counts,
  depth = 0,
): Promise<void> {
  try {
    await readWindow(deps, stream, window, options, counts);
  } catch (error) {
    const span = window.to.getTime() - window.from.getTime();
    if (!(error instanceof WindowTooLargeError) || span < 2 * MIN_SPLIT_MS || depth >= 6 || options.signal.aborted) {
      throw error;
    }
    const middle = new Date(window.from.getTime() + Math.floor(span / 2000) * 1000);
    options.log.warn(
      { window_from: window.from, window_to: window.to, split_at: middle, reason: error.message },
      "window split: Graph could not serve it whole",
    );
    await readWindowSplitting(deps, stream, { from: window.from, to: middle }, options, counts, depth + 1);
    await readWindowSplitting(deps, stream, { from: middle, to: window.to }, options, counts, depth + 1);
  }
}
