import assert from "node:assert/strict";
import { test } from "node:test";

import { planWindows, type WindowSettings } from "../src/ingest/window.ts";
import { DAY, HOUR, MINUTE } from "../src/time.ts";

const settings: WindowSettings = {
  initialLookbackMs: 7 * DAY,
  overlapMs: 30 * MINUTE,
  settleMs: 2 * MINUTE,
  maxWindowMs: 6 * HOUR,
  retentionMs: 30 * DAY,
};
const now = new Date("2026-11-28T12:00:30.750Z");
const iso = (w: { from: Date; to: Date }) => [w.from.toISOString(), w.to.toISOString()];

test("a normal cycle reads [checkpoint − overlap, now − settle] in whole seconds", () => {
  const plan = planWindows(new Date("2026-11-28T11:55:00Z"), now, settings);
  assert.deepEqual(plan.windows.map(iso), [["2026-11-28T11:25:00.000Z", "2026-11-28T11:58:30.000Z"]]);
  assert.equal(plan.lost, undefined);
});

test("the first run reads INITIAL_LOOKBACK back, split into MAX_WINDOW chunks, oldest first, contiguous", () => {
  const plan = planWindows(undefined, now, settings);
  assert.equal(plan.windows.length, 28);
  assert.equal(plan.windows[0]?.from.toISOString(), "2026-11-21T12:00:30.000Z");
  assert.equal(plan.windows.at(-1)?.to.toISOString(), "2026-11-28T11:58:30.000Z");
  for (let i = 1; i < plan.windows.length; i++) {
    assert.equal(plan.windows[i]?.from.getTime(), plan.windows[i - 1]?.to.getTime(), "chunks share their boundary");
    assert.ok((plan.windows[i]?.to.getTime() ?? 0) - (plan.windows[i]?.from.getTime() ?? 0) <= 6 * HOUR);
  }
});

test("a long gap after downtime is split; every chunk ends at or before now − settle", () => {
  const plan = planWindows(new Date("2026-11-27T00:00:00Z"), now, settings);
  assert.equal(plan.windows[0]?.from.toISOString(), "2026-11-26T23:30:00.000Z");
  assert.ok(plan.windows.every((w) => w.to.getTime() <= now.getTime() - 2 * MINUTE));
  assert.ok(plan.windows.every((w) => w.from < w.to));
});

test("a checkpoint ahead of now (clock went back) plans only the overlap that is already settled", () => {
  const plan = planWindows(new Date("2026-11-28T12:10:00Z"), now, settings);
  assert.deepEqual(plan.windows.map(iso), [["2026-11-28T11:40:00.000Z", "2026-11-28T11:58:30.000Z"]]);
  const none = planWindows(new Date("2026-11-28T13:00:00Z"), now, settings);
  assert.deepEqual(none.windows, []);
});

test("a checkpoint older than Graph's retention reports the lost range and starts at the horizon", () => {
  const plan = planWindows(new Date("2026-10-01T00:00:00Z"), now, settings);
  assert.ok(plan.lost);
  assert.equal(plan.lost.from.toISOString(), "2026-10-01T00:00:00.000Z");
  assert.equal(plan.windows[0]?.from.getTime(), plan.lost.to.getTime());
  assert.ok((plan.windows[0]?.from.getTime() ?? 0) > now.getTime() - 30 * DAY);
});

test("the overlap alone reaching past retention is not reported as lost", () => {
  const plan = planWindows(new Date(now.getTime() - 30 * DAY + 10 * MINUTE), now, settings);
  assert.equal(plan.lost, undefined);
});
