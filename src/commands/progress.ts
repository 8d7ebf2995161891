// Progress of `once` on a terminal: one line on stderr, redrawn at most every `everyMs`, read from the counters the
// cycle already keeps (Metrics) and the throttle budget's waiters. Nothing here reads `process`.

import type { GraphBudget } from "../graph/budget.ts";
import type { Metrics } from "../metrics.ts";
import { formatDuration, SECOND } from "../time.ts";
import type { ProgressTerminal } from "./types.ts";

export interface CycleProgress {
  streamsDone: number;
  streams: number;
  /** Tail windows read completely (each commits the checkpoint). */
  windows: number;
  events: number;
  inserted: number;
  pages: number;
  elapsedMs: number;
  /** Requests waiting for a slot of the Graph throttle budget now. */
  waiting: number;
  /** Time requests spent waiting for the budget so far. */
  waitedMs: number;
  budget: { perTenant: number; windowMs: number };
}

/** `once · streams 1/4 done · 3 windows · 5,666 events (5,600 new) · 57 pages · 45 ev/s · 1m05s · waiting for Graph's budget …` */
export function formatCycleProgress(p: CycleProgress, final = false): string {
  const rate = p.elapsedMs > 0 ? Math.round((p.events * SECOND) / p.elapsedMs) : 0;
  const parts = [
    `once · streams ${p.streamsDone}/${p.streams} done`,
    `${p.windows.toLocaleString("en-US")} window${p.windows === 1 ? "" : "s"}`,
    `${p.events.toLocaleString("en-US")} events (${p.inserted.toLocaleString("en-US")} new)`,
    `${p.pages.toLocaleString("en-US")} pages`,
    `${rate.toLocaleString("en-US")} ev/s`,
    final ? `done in ${formatDuration(Math.round(p.elapsedMs / SECOND) * SECOND)}` : formatDuration(roundSecond(p)),
  ];
  if (!final && p.waiting > 0) {
    parts.push(
      `waiting for Graph's throttle budget (${p.budget.perTenant} requests per ${formatDuration(p.budget.windowMs)} per tenant)`,
    );
  } else if (p.waitedMs >= SECOND) {
    parts.push(`${formatDuration(Math.round(p.waitedMs / SECOND) * SECOND)} spent waiting for the throttle budget`);
  }
  return parts.join(" · ");
}

function roundSecond(p: CycleProgress): number {
  return Math.round(p.elapsedMs / SECOND) * SECOND;
}

/** Sums a prom-client counter's values whose labels match `where`. */
async function total(
  counter: Metrics["events"],
  where: (labels: Record<string, unknown>) => boolean = () => true,
): Promise<number> {
  const { values } = await counter.get();
  return values.filter((v) => where(v.labels)).reduce((sum, v) => sum + v.value, 0);
}

/** Redraws the terminal's current line (cut to its width); `final` ends it. */
export function redrawLine(terminal: ProgressTerminal, line: string, final: boolean): void {
  const width = terminal.columns ?? 0;
  terminal.write(
    `\r\x1b[2K${width > 10 && line.length >= width ? line.slice(0, width - 1) : line}${final ? "\n" : ""}`,
  );
}

export interface ProgressLine {
  /** Writes the final state and ends the line. */
  stop(): Promise<void>;
}

/** Redraws the progress of a `once` run on `terminal` every `everyMs` until stopped. */
export function showCycleProgress(options: {
  terminal: ProgressTerminal;
  metrics: Metrics;
  budget: GraphBudget;
  streams: number;
  now?: () => number;
  everyMs?: number;
}): ProgressLine {
  const now = options.now ?? (() => performance.now());
  const started = now();
  const { terminal, metrics, budget } = options;
  const read = async (): Promise<CycleProgress> => ({
    streamsDone: await total(metrics.cycles),
    streams: options.streams,
    windows: await total(metrics.windows),
    events: await total(metrics.events, (l) => l.result !== "rejected"),
    inserted: await total(metrics.events, (l) => l.result === "inserted"),
    pages: await total(metrics.pages),
    elapsedMs: now() - started,
    waiting: budget.waiting,
    waitedMs: budget.waitedMs,
    budget: { perTenant: budget.limits.perTenant, windowMs: budget.limits.windowMs },
  });
  const draw = (line: string, final: boolean) => redrawLine(terminal, line, final);
  let drawing: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    drawing = drawing.then(async () => draw(formatCycleProgress(await read()), false));
  }, options.everyMs ?? 500);
  timer.unref();
  let stopped: Promise<void> | undefined;
  return {
    stop: () =>
      (stopped ??= (async () => {
        clearInterval(timer);
        await drawing;
        draw(formatCycleProgress(await read(), true), true);
      })()),
  };
}
