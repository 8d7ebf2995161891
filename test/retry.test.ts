import assert from "node:assert/strict";
import { test } from "node:test";

import { backoffDelay, clampRetryAfter, parseRetryAfter } from "../src/graph/retry.ts";

const now = new Date("2026-11-28T12:00:00Z");

test("Retry-After as delta-seconds, HTTP-date, and garbage", () => {
  assert.equal(parseRetryAfter("7", now), 7000);
  assert.equal(parseRetryAfter(" 0 ", now), 0);
  assert.equal(parseRetryAfter("1.5", now), 1500);
  assert.equal(parseRetryAfter("Sat, 28 Nov 2026 12:00:30 GMT", now), 30_000);
  assert.equal(parseRetryAfter("Sat, 28 Nov 2026 11:00:00 GMT", now), 0, "a date in the past means now");
  for (const garbage of ["abc", "-5", "", "1e3", "NaN"]) {
    assert.equal(parseRetryAfter(garbage, now), undefined, garbage);
  }
  assert.equal(parseRetryAfter(undefined, now), undefined);
});

test("absurd Retry-After values are clamped", () => {
  assert.equal(clampRetryAfter(86_400_000, 300_000), 300_000);
  assert.equal(clampRetryAfter(-5, 300_000), 0);
});

test("backoff doubles per attempt, is capped, and never drops below half the ceiling", () => {
  assert.equal(
    backoffDelay(1, 5000, 120_000, () => 0),
    2500,
  );
  assert.equal(
    backoffDelay(1, 5000, 120_000, () => 1),
    5000,
  );
  assert.equal(
    backoffDelay(3, 5000, 120_000, () => 1),
    20_000,
  );
  assert.equal(
    backoffDelay(20, 5000, 120_000, () => 1),
    120_000,
  );
  for (let attempt = 1; attempt < 10; attempt++) {
    const d = backoffDelay(attempt, 5000, 120_000);
    const ceiling = Math.min(120_000, 5000 * 2 ** (attempt - 1));
    assert.ok(d >= ceiling / 2 && d <= ceiling, `attempt ${attempt}: ${d}`);
  }
});
