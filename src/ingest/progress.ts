// Shows a backfill's progress: one line redrawn in place on a terminal, plain log lines otherwise (files, pipes,
// journald), at most one every `logEveryMs`. The caller decides where the terminal is; nothing here reads `process`.

import type { Logger } from "../log.ts";
import { formatDuration, SECOND } from "../time.ts";
import type { BackfillProgress } from "./backfill.ts";

export interface ProgressOptions {
  log: Logger;
  /** A terminal to redraw the line on (e.g. process.stderr when it is a TTY); undefined = log lines. */
  terminal?: { write(text: string): unknown; columns?: number } | undefined;
  /** Least time between two log lines (default 10 s); the first and the last are always written. */
  logEveryMs?: number;
  /** Least time between two redraws on the terminal (default 250 ms). */
  redrawEveryMs?: number;
  now?: () => number;
}

export interface ProgressDisplay {
  update(progress: BackfillProgress): void;
  /** Writes the final state (and ends the terminal line). */
  finish(progress: BackfillProgress): void;
}

export function createProgressDisplay(options: ProgressOptions): ProgressDisplay {
  const now = options.now ?? (() => performance.now());
  const terminal = options.terminal;
  const every = terminal ? (options.redrawEveryMs ?? 250) : (options.logEveryMs ?? 10 * SECOND);
  let last = -Infinity;
  let shown = 0;
  const show = (progress: BackfillProgress, final: boolean) => {
    if (terminal) {
      const line = formatProgress(progress);
      const width = terminal.columns ?? 0;
      terminal.write(
        `\r\x1b[2K${width > 10 && line.length >= width ? line.slice(0, width - 1) : line}${final ? "\n" : ""}`,
      );
    } else {
      options.log.info(progressFields(progress), progress.finished ? "backfill finished" : "backfill progress");
    }
    shown++;
  };
  return {
    update(progress) {
      const t = now();
      // A log line for the first slice done, then one per interval.
      if (t - last >= every || (shown === 0 && progress.slicesDone > 0)) {
        last = t;
        show(progress, false);
      }
    },
    finish(progress) {
      show(progress, true);
    },
  };
}

/** `slices 12/40 · 31.2% of 30d · 123,456 events (120,001 new) · 2,345 ev/s · ETA 12m30s · 6 at once` */
function formatProgress(p: BackfillProgress): string {
  const parts = [
    `slices ${p.slicesDone}/${p.slicesTotal}`,
    `${percent(p)}% of ${formatDuration(p.totalMs)}`,
    `${p.counts.fetched.toLocaleString("en-US")} events (${p.counts.inserted.toLocaleString("en-US")} new)`,
    `${Math.round(p.eventsPerSecond).toLocaleString("en-US")} ev/s`,
    p.finished ? `done in ${formatDuration(Math.round(p.elapsedMs / SECOND) * SECOND)}` : `ETA ${eta(p)}`,
    `${p.slicesRunning} running (max ${p.concurrency})`,
  ];
  if (p.throttled > 0) {
    parts.push(`${p.throttled} throttled`);
  }
  return parts.join(" · ");
}

function progressFields(p: BackfillProgress): Record<string, unknown> {
  return {
    slices_done: p.slicesDone,
    slices_total: p.slicesTotal,
    slices_running: p.slicesRunning,
    done_pct: Number(percent(p)),
    events: p.counts.fetched,
    inserted: p.counts.inserted,
    updated: p.counts.updated,
    pages: p.counts.pages + p.pagesInFlight,
    events_per_s: Math.round(p.eventsPerSecond),
    eta_s: p.etaMs === undefined ? null : Math.round(p.etaMs / SECOND),
    elapsed_s: Math.round(p.elapsedMs / SECOND),
    concurrency: p.concurrency,
    throttled: p.throttled,
    splits: p.splits,
  };
}

function percent(p: BackfillProgress): string {
  return p.totalMs > 0 ? ((100 * p.doneMs) / p.totalMs).toFixed(1) : "100.0";
}

function eta(p: BackfillProgress): string {
  if (p.etaMs === undefined) {
    return "…";
  }
  return p.etaMs < SECOND ? "<1s" : formatDuration(Math.round(p.etaMs / SECOND) * SECOND);
}
