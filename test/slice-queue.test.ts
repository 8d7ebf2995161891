import assert from "node:assert/strict";
import { test } from "node:test";

import { type Slice, SliceQueue } from "../src/ingest/slice-queue.ts";
import { HOUR, MINUTE } from "../src/time.ts";

const T0 = Date.parse("2026-11-01T00:00:00Z");
const at = (ms: number) => new Date(T0 + ms);
const sizing = { sliceMs: HOUR, minSliceMs: MINUTE, maxSliceMs: 24 * HOUR, targetEvents: 1000 };
const none = { slicesDone: 0, doneMs: 0, fetched: 0 };
const span = (s: Slice | undefined) => s && [s.from.getTime() - T0, s.to.getTime() - T0];

test("slices are cut oldest first, sliceMs long until the density is known, sharing their boundary second", () => {
  const queue = new SliceQueue([{ from: at(0), to: at(10 * HOUR) }], sizing);
  assert.deepEqual(span(queue.next(none, 2)), [0, HOUR]);
  assert.deepEqual(span(queue.next(none, 2)), [HOUR, 2 * HOUR]);
  assert.equal(queue.remainingMs(), 8 * HOUR);
  assert.equal(queue.queued(), 8, "the uncut rest at the last length");
});

test("later slices follow the density; the last stretch is shared among the workers; no sliver is left", () => {
  const queue = new SliceQueue([{ from: at(0), to: at(20 * HOUR) }], sizing);
  // 500 events in 1 h: 1,000 events take 2 h.
  assert.deepEqual(span(queue.next({ slicesDone: 1, doneMs: HOUR, fetched: 500 }, 1)), [0, 2 * HOUR]);
  // An empty stretch: as long as allowed, but no more than an equal share of the 18 h left among 3 workers.
  assert.deepEqual(span(queue.next({ slicesDone: 2, doneMs: 2 * HOUR, fetched: 0 }, 3)), [2 * HOUR, 8 * HOUR]);
  // Less than half a minimum slice would remain after this one: it is taken along.
  const short = new SliceQueue([{ from: at(0), to: at(HOUR + 20_000) }], sizing);
  assert.deepEqual(span(short.next(none, 1)), [0, HOUR + 20_000]);
  assert.equal(short.next(none, 1), undefined);
});

test("gaps are read in order, each cut on its own", () => {
  const queue = new SliceQueue(
    [
      { from: at(0), to: at(30 * MINUTE) },
      { from: at(5 * HOUR), to: at(6 * HOUR) },
    ],
    sizing,
  );
  assert.deepEqual(span(queue.next(none, 1)), [0, 30 * MINUTE]);
  assert.deepEqual(span(queue.next(none, 1)), [5 * HOUR, 6 * HOUR]);
  assert.equal(queue.next(none, 1), undefined);
  assert.equal(queue.queued(), 0);
});

test("a failed slice is split in halves read next; one too short to split is retried after the others", () => {
  const queue = new SliceQueue([{ from: at(0), to: at(10 * HOUR) }], sizing);
  const first = queue.next(none, 1) as Slice;
  const tiny: Slice = { from: at(0), to: at(MINUTE + 30_000), attempts: 2 };
  assert.equal(queue.split(tiny), false, "shorter than two minimum slices");
  queue.retry(tiny);
  assert.equal(queue.split(first), true);
  assert.deepEqual(span(queue.next(none, 1)), [0, 30 * MINUTE]);
  assert.deepEqual(span(queue.next(none, 1)), [30 * MINUTE, HOUR]);
  const again = queue.next(none, 1);
  assert.equal(again, tiny, "the retry keeps its attempts");
  assert.equal(again?.attempts, 2);
  assert.deepEqual(span(queue.next(none, 1)), [HOUR, 2 * HOUR], "then new slices again");
});

test("halves of an odd length meet on a whole second", () => {
  const queue = new SliceQueue([], sizing);
  assert.equal(queue.split({ from: at(0), to: at(2 * MINUTE + 1_000), attempts: 1 }), true);
  assert.deepEqual(span(queue.next(none, 1)), [0, MINUTE]);
  assert.deepEqual(span(queue.next(none, 1)), [MINUTE, 2 * MINUTE + 1_000]);
});
