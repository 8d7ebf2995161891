import assert from "node:assert/strict";
import { test } from "node:test";

import { GraphClock, MAX_PLAUSIBLE_SKEW_MS } from "../src/graph/clock.ts";
import type { Logger } from "../src/log.ts";

function fakes(hostStart: number) {
  let host = hostStart;
  let mono = 0;
  return {
    host: { now: () => new Date(host) },
    monotonic: () => mono,
    advance(ms: number, hostStep = 0) {
      mono += ms;
      host += ms + hostStep;
    },
  };
}

test("before any response the host clock is used", () => {
  const f = fakes(Date.UTC(2026, 10, 28, 12));
  assert.equal(new GraphClock(f.host, f.monotonic).now().getTime(), Date.UTC(2026, 10, 28, 12));
});

test("a host clock ahead of Graph is corrected to Graph's time, which then moves on monotonically", () => {
  const graph = Date.UTC(2026, 10, 28, 12);
  const f = fakes(graph + 90_000);
  const clock = new GraphClock(f.host, f.monotonic);
  clock.observe(new Date(graph).toUTCString());
  assert.equal(clock.offsetMs, -90_000);
  assert.equal(clock.now().getTime(), graph);
  f.advance(5_000);
  assert.equal(clock.now().getTime(), graph + 5_000);
  // The host clock steps forward by 10 minutes between responses: Graph's time does not.
  f.advance(1_000, 600_000);
  assert.equal(clock.now().getTime(), graph + 6_000);
});

test("a host clock behind Graph is used as it is (it only adds latency)", () => {
  const graph = Date.UTC(2026, 10, 28, 12);
  const f = fakes(graph - 30_000);
  const clock = new GraphClock(f.host, f.monotonic);
  clock.observe(new Date(graph).toUTCString());
  assert.equal(clock.offsetMs, 30_000);
  assert.equal(clock.now().getTime(), graph - 30_000);
  clock.observe("not a date");
  assert.equal(clock.offsetMs, 30_000, "garbage headers are ignored");
});

function recordingLog() {
  const lines: Array<{ level: string; msg: string; obj: Record<string, unknown> }> = [];
  const at =
    (level: string) =>
    (obj: Record<string, unknown>, msg: string): void => {
      lines.push({ level, msg, obj });
    };
  return { lines, log: { warn: at("warn"), info: at("info") } as unknown as Logger };
}

test("a Date header more than MAX_PLAUSIBLE_SKEW_MS away is ignored, warned once per change, and counted", () => {
  const host = Date.UTC(2026, 10, 28, 12);
  const f = fakes(host);
  const { lines, log } = recordingLog();
  const clock = new GraphClock(f.host, f.monotonic, { log });
  // First response ever from 2001: ignored, the host clock is used, windows keep moving.
  clock.observe("Mon, 01 Jan 2001 00:00:00 GMT");
  clock.observe("Mon, 01 Jan 2001 00:00:01 GMT");
  assert.equal(clock.now().getTime(), host);
  assert.equal(clock.offsetMs, undefined);
  assert.equal(clock.ignoredDates, 2);
  assert.equal(clock.ignoring, true);
  assert.equal(lines.filter((l) => l.level === "warn").length, 1, "one warning for a run of the same bad clock");
  // A different bad clock (the far future) is a change: warned again; the earlier-of rule alone would not need it.
  clock.observe(new Date(host + MAX_PLAUSIBLE_SKEW_MS + 60 * 60_000).toUTCString());
  assert.equal(lines.filter((l) => l.level === "warn").length, 2);
  assert.equal(clock.now().getTime(), host);
  // A plausible header again: used, and said so.
  clock.observe(new Date(host - 30_000).toUTCString());
  assert.equal(clock.ignoring, false);
  assert.equal(clock.now().getTime(), host - 30_000);
  assert.ok(lines.some((l) => l.level === "info" && /used again/.test(l.msg)));
  // Just inside the bound is believed (a host clock kept in local time, up to UTC+14, still defers to Graph).
  clock.observe(new Date(host - 14 * 3_600_000).toUTCString());
  assert.equal(clock.now().getTime(), host - 14 * 3_600_000);
});

test("the monotonic rule holds while headers are ignored: a host stepping far ahead cannot carry Graph time along", () => {
  const graph = Date.UTC(2026, 10, 28, 12);
  const f = fakes(graph);
  const clock = new GraphClock(f.host, f.monotonic);
  clock.observe(new Date(graph).toUTCString());
  // The host clock jumps two days ahead: Graph's (correct) headers now look implausible and are ignored, but "now"
  // stays the last believed Graph time moved on by the monotonic clock, not the host's.
  f.advance(10_000, 2 * 86_400_000);
  clock.observe(new Date(graph + 10_000).toUTCString());
  assert.equal(clock.ignoredDates, 1);
  assert.equal(clock.now().getTime(), graph + 10_000);
});
