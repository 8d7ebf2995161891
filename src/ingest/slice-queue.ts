// The work queue of a backfill (src/ingest/backfill.ts): the gaps of its range, cut lazily into slices oldest
// first, and slices to read again (halves of failed ones, retries) ahead of new ones. Pure: no I/O, no clock.
//
// The first slices are `sliceMs` long; later ones are sized from the event density seen so far to about
// `targetEvents` events, never longer than an equal share of what is left among the workers (so the last stretch
// is spread over all of them), and within [minSliceMs, maxSliceMs].

import { floorSecond, SECOND } from "../time.ts";
import type { Window } from "./window.ts";

export interface Slice extends Window {
  /** Reads of this slice started so far. */
  attempts: number;
}

export interface SliceSizing {
  /** Length of the first slices, before the event density is known. */
  sliceMs: number;
  /** Slices are never cut or split below this. */
  minSliceMs: number;
  /** Slices are never longer than this. */
  maxSliceMs: number;
  /** Events a slice should hold once the density is known. */
  targetEvents: number;
}

/** What the slices read completely so far held: sizes the next slice. */
export interface Density {
  slicesDone: number;
  /** Their total length. */
  doneMs: number;
  /** Events they held. */
  fetched: number;
}

export class SliceQueue {
  readonly #pending: Array<{ from: number; to: number }>;
  readonly #redo: Slice[] = [];
  readonly #sizing: SliceSizing;
  #currentSliceMs: number;

  /** `gaps`: the parts of the range to read, oldest first, in whole seconds. */
  constructor(gaps: readonly Window[], sizing: SliceSizing) {
    this.#pending = gaps.map((g) => ({ from: g.from.getTime(), to: g.to.getTime() }));
    this.#sizing = sizing;
    this.#currentSliceMs = sizing.sliceMs;
  }

  /** Length of the range not cut into slices yet. */
  remainingMs(): number {
    return this.#pending.reduce((sum, p) => sum + (p.to - p.from), 0);
  }

  /** Slices not started: those to read again, and an estimate for the uncut rest at the last slice length. */
  queued(): number {
    const rest = this.remainingMs();
    return this.#redo.length + (rest > 0 ? Math.ceil(rest / Math.max(SECOND, this.#currentSliceMs)) : 0);
  }

  /**
   * The next slice to read: one to read again first, otherwise a new one cut from the front of the oldest gap
   * (sized from `density`, shared among `workers`); undefined when nothing is left.
   */
  next(density: Density, workers: number): Slice | undefined {
    const again = this.#redo.shift();
    if (again) {
      return again;
    }
    const gap = this.#pending[0];
    if (!gap) {
      return undefined;
    }
    let end = Math.min(gap.to, gap.from + this.#nextLength(density, workers));
    if (gap.to - end < this.#sizing.minSliceMs / 2) {
      end = gap.to; // no sliver left behind
    }
    const slice: Slice = { from: new Date(gap.from), to: new Date(end), attempts: 0 };
    // Slices share their boundary second (ge/le), as the tail's windows do: nothing falls between two.
    gap.from = end;
    if (gap.from >= gap.to) {
      this.#pending.shift();
    }
    return slice;
  }

  /**
   * Queues the two halves of a failed slice, to be read next, when it is at least twice `minSliceMs` long; false
   * (nothing queued) when it is too short to split.
   */
  split(slice: Slice): boolean {
    const length = slice.to.getTime() - slice.from.getTime();
    if (length < 2 * this.#sizing.minSliceMs) {
      return false;
    }
    const middle = floorSecond(slice.from.getTime() + length / 2);
    this.#redo.unshift(
      { from: slice.from, to: new Date(middle), attempts: 0 },
      { from: new Date(middle), to: slice.to, attempts: 0 },
    );
    return true;
  }

  /** Queues a failed slice to be read again, after the others waiting to be read again. */
  retry(slice: Slice): void {
    this.#redo.push(slice);
  }

  #nextLength(density: Density, workers: number): number {
    const { sliceMs, minSliceMs, maxSliceMs, targetEvents } = this.#sizing;
    let length = sliceMs;
    if (density.slicesDone > 0) {
      length = density.fetched > 0 ? (targetEvents * density.doneMs) / density.fetched : maxSliceMs;
    }
    length = Math.min(length, this.remainingMs() / Math.max(1, workers));
    length = Math.max(minSliceMs, Math.min(maxSliceMs, length));
    this.#currentSliceMs = Math.max(SECOND, floorSecond(length));
    return this.#currentSliceMs;
  }
}
