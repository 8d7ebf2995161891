// Graph's idea of "now", learned from the Date header of its responses. A host clock that runs ahead of Graph
// would move the window's end past events Graph has not published yet, so we never trust it beyond Graph's.
// A Date header more than MAX_PLAUSIBLE_SKEW_MS away from the host clock is not Graph's clock but a broken or
// hostile peer (a proxy with a dead clock, a replayed response): it is ignored, or one header from 2001 would
// hold every later window back until 2001 caught up (every cycle "complete" with 0 windows).

import type { Logger } from "../log.ts";
import { type Clock, formatDuration, HOUR } from "../time.ts";

export const SKEW_WARNING_MS = 2 * 60_000;

/**
 * The largest difference between Graph's Date header and the host clock that is believed. Wider than any time
 * zone mistake on the host (UTC+14, e.g. a hardware clock kept in local time), so a host that is hours off still
 * defers to Graph, as the monotonic rule below requires; narrow enough that a year-old Date is never believed.
 */
export const MAX_PLAUSIBLE_SKEW_MS = 24 * HOUR;

export class GraphClock implements Clock {
  readonly #host: Clock;
  readonly #monotonic: () => number;
  readonly #log: Logger | undefined;
  readonly #onIgnored: (() => void) | undefined;
  /** The latest believed Date header, and the monotonic time it was seen at. */
  #seen: { graphMs: number; monotonicMs: number } | undefined;
  /** Graph time minus host time at the latest believed response (for the skew warning). */
  #offsetMs: number | undefined;
  /** The offset of the implausible header last warned about (undefined while headers are believed). */
  #warnedOffsetMs: number | undefined;
  /** Date headers ignored as implausible since start (a metric for readiness and alerts). */
  ignoredDates = 0;

  constructor(
    host: Clock,
    monotonic: () => number = () => performance.now(),
    options: { log?: Logger; /** Called for every ignored header (a metric). */ onIgnored?: () => void } = {},
  ) {
    this.#host = host;
    this.#monotonic = monotonic;
    this.#log = options.log;
    this.#onIgnored = options.onIgnored;
  }

  /** Records a response's Date header (seconds precision); ignores garbage and implausible clocks. */
  observe(dateHeader: string | undefined): void {
    if (!dateHeader) {
      return;
    }
    const graphMs = Date.parse(dateHeader);
    if (!Number.isFinite(graphMs)) {
      return;
    }
    const offsetMs = graphMs - this.#host.now().getTime();
    if (Math.abs(offsetMs) > MAX_PLAUSIBLE_SKEW_MS) {
      this.#ignore(dateHeader, offsetMs);
      return;
    }
    if (this.#warnedOffsetMs !== undefined) {
      this.#warnedOffsetMs = undefined;
      this.#log?.info({ skewMs: offsetMs }, "Graph's Date header agrees with the host clock again; it is used again");
    }
    this.#seen = { graphMs, monotonicMs: this.#monotonic() };
    this.#offsetMs = offsetMs;
  }

  /** True while the latest Date header was ignored as implausible. */
  get ignoring(): boolean {
    return this.#warnedOffsetMs !== undefined;
  }

  #ignore(dateHeader: string, offsetMs: number): void {
    this.ignoredDates++;
    this.#onIgnored?.();
    // One warning per change: when headers start being ignored, or the ignored clock jumps again.
    if (this.#warnedOffsetMs === undefined || Math.abs(offsetMs - this.#warnedOffsetMs) > SKEW_WARNING_MS) {
      this.#log?.warn(
        { date: dateHeader.slice(0, 64), skewMs: offsetMs, ignoredDates: this.ignoredDates },
        `ignoring a Date header ${formatDuration(Math.abs(Math.round(offsetMs / 1000)) * 1000)} ${offsetMs < 0 ? "behind" : "ahead of"} the host clock (more than ${formatDuration(MAX_PLAUSIBLE_SKEW_MS)}): not Graph's clock. If the host clock is the wrong one, fix its time synchronisation`,
      );
    }
    this.#warnedOffsetMs = offsetMs;
  }

  /** Graph time minus host time (negative when the host runs ahead), or undefined before any response. */
  get offsetMs(): number | undefined {
    return this.#offsetMs;
  }

  /**
   * The earlier of host time and Graph time. Graph time is the latest Date header moved on by a monotonic clock, so
   * a host clock that steps forward between responses cannot run ahead of it (found by the fault campaign); a Date
   * header truncates to seconds, so this errs early.
   */
  now(): Date {
    const host = this.#host.now();
    if (this.#seen === undefined) {
      return host;
    }
    const graph = this.#seen.graphMs + (this.#monotonic() - this.#seen.monotonicMs);
    return host.getTime() <= graph ? host : new Date(graph);
  }
}
