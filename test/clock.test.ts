import assert from "node:assert/strict";
import { test } from "node:test";

import { GraphClock } from "../src/graph/clock.ts";

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
