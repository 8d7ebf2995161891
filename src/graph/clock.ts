// Graph's idea of "now", learned from the Date header of its responses. A host clock that runs ahead of Graph
// would move the window's end past events Graph has not published yet, so we never trust it beyond Graph's.

import type { Clock } from "../time.ts";

export const SKEW_WARNING_MS = 2 * 60_000;

export class GraphClock implements Clock {
  readonly #host: Clock;
  /** Graph time minus host time, from the latest response with a Date header. */
  #offsetMs: number | undefined;

  constructor(host: Clock) {
    this.#host = host;
  }

  /** Records a response's Date header (seconds precision) seen at host time `receivedAt`. */
  observe(dateHeader: string | undefined, receivedAt: Date): void {
    if (!dateHeader) {
      return;
    }
    const graphTime = Date.parse(dateHeader);
    if (Number.isFinite(graphTime)) {
      // Against the host clock, not `receivedAt`: callers stamp responses with this very clock (already corrected
      // by the previous offset), which made the offset flip between the skew and zero on alternate responses, so
      // every other cycle planned with the fast host clock and moved the checkpoint past Graph's now (fault campaign).
      void receivedAt;
      this.#offsetMs = graphTime - this.#host.now().getTime();
    }
  }

  /** Graph time minus host time (negative when the host runs ahead), or undefined before any response. */
  get offsetMs(): number | undefined {
    return this.#offsetMs;
  }

  /** The earlier of host time and Graph time (a Date header truncates to seconds, so this errs early). */
  now(): Date {
    const host = this.#host.now();
    if (this.#offsetMs === undefined || this.#offsetMs >= 0) {
      return host;
    }
    return new Date(host.getTime() + this.#offsetMs);
  }
}
