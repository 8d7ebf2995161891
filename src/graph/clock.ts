// Graph's idea of "now", learned from the Date header of its responses. A host clock that runs ahead of Graph
// would move the window's end past events Graph has not published yet, so we never trust it beyond Graph's.

import type { Clock } from "../time.ts";

export const SKEW_WARNING_MS = 2 * 60_000;

export class GraphClock implements Clock {
  readonly #host: Clock;
  readonly #monotonic: () => number;
  /** The latest Date header, and the monotonic time it was seen at. */
  #seen: { graphMs: number; monotonicMs: number } | undefined;
  /** Graph time minus host time at the latest response (for the skew warning). */
  #offsetMs: number | undefined;

  constructor(host: Clock, monotonic: () => number = () => performance.now()) {
    this.#host = host;
    this.#monotonic = monotonic;
  }

  /** Records a response's Date header (seconds precision). */
  observe(dateHeader: string | undefined): void {
    if (!dateHeader) {
      return;
    }
    const graphMs = Date.parse(dateHeader);
    if (Number.isFinite(graphMs)) {
      this.#seen = { graphMs, monotonicMs: this.#monotonic() };
      this.#offsetMs = graphMs - this.#host.now().getTime();
    }
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
