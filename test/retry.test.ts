import assert from "node:assert/strict";
import { test } from "node:test";

import { backoffDelay, clampRetryAfter, parseRetryAfter } from "../src/graph/retry.ts";
import { redact, REDACTED, registerSecret } from "../src/redact.ts";
import { MAX_TIMER_MS, sleep, timerDelay } from "../src/time.ts";

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

test("Retry-After nonsense is no wait asked for; huge values and far HTTP-dates become a wait the cap then clamps", () => {
  for (const nonsense of ["soon", "Mon", "-1", "1e9", "0x10", "12 seconds", "Infinity", "tomorrow at noon"]) {
    assert.equal(parseRetryAfter(nonsense, now), undefined, nonsense);
  }
  const huge = parseRetryAfter("9".repeat(400), now);
  assert.equal(clampRetryAfter(huge as number, 300_000), 300_000, "more digits than a double holds");
  const far = parseRetryAfter("Fri, 01 Jan 2100 00:00:00 GMT", now) as number;
  assert.ok(far > MAX_TIMER_MS, "beyond what a timer can hold");
  assert.equal(clampRetryAfter(far, 3000), 3000);
});

test("timer delays are clamped to what setTimeout can hold; NaN and negatives are no wait", () => {
  assert.equal(timerDelay(2 ** 31), MAX_TIMER_MS);
  assert.equal(timerDelay(Number.POSITIVE_INFINITY), MAX_TIMER_MS);
  assert.equal(timerDelay(Number.NaN), 0);
  assert.equal(timerDelay(-5), 0);
  assert.equal(timerDelay(1234), 1234);
});

test("sleep longer than a timer holds waits it out in steps instead of firing at once", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  let done = false;
  const sleeping = sleep(MAX_TIMER_MS + 5000).then(() => {
    done = true;
  });
  const settle = () => new Promise<void>((resolve) => setImmediate(resolve));
  t.mock.timers.tick(1);
  await settle();
  assert.equal(done, false, "not after 1 ms (what an overflowing setTimeout does)");
  t.mock.timers.tick(MAX_TIMER_MS);
  await settle();
  assert.equal(done, false, "not after the first step");
  t.mock.timers.tick(5000);
  await settle();
  await sleeping;
  assert.equal(done, true);
  const aborted = new AbortController();
  const forever = sleep(Number.POSITIVE_INFINITY, aborted.signal);
  aborted.abort(new Error("stop"));
  await assert.rejects(forever, /stop/);
});

test("redact removes registered secrets in every echoed form, and credential-shaped values whatever their value", () => {
  const secret = "Zq8~secret/with+odd=chars&more";
  registerSecret(secret);
  const form = new URLSearchParams({ grant_type: "client_credentials", client_secret: secret }).toString();
  for (const text of [
    `echo: ${form}`,
    `raw ${secret} raw`,
    `json {"s":${JSON.stringify(secret)}}`,
    `pct ${encodeURIComponent(secret)}`,
  ]) {
    const out = redact(text);
    assert.ok(!out.includes(secret) && !out.includes(encodeURIComponent(secret)), out);
    assert.ok(out.includes(REDACTED), out);
  }
  const jwt = "eyJhbGciOiJQUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln";
  assert.equal(redact(`assertion ${jwt} end`), `assertion ${REDACTED} end`);
  assert.equal(redact("Authorization: Bearer abc.def-ghi"), `Authorization: Bearer ${REDACTED}`);
  assert.equal(redact("client_assertion=abc123&scope=x"), `client_assertion=${REDACTED}&scope=x`);
  assert.equal(redact('{"password":"hunter22"}'), `{"password":"${REDACTED}"}`);
  assert.equal(redact("-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY----- after"), `${REDACTED} after`);
  assert.equal(redact("nothing secret here: 429 after 3 attempts"), "nothing secret here: 429 after 3 attempts");
  registerSecret("ab");
  assert.equal(redact("a tab b"), "a tab b", "values too short to be secrets are not registered");
});
