import assert from "node:assert/strict";
import { test } from "node:test";

import { isGraphDateTime, sortEvents } from "../src/ingest/events.ts";

test("Graph timestamps: 0..7 fractional digits with a zone are accepted; the rest is not", () => {
  for (const ok of ["2026-11-28T12:00:00Z", "2026-11-28T12:00:00.1834571Z", "2026-11-28T12:00:00.5+01:00"]) {
    assert.ok(isGraphDateTime(ok), ok);
  }
  for (const bad of [
    "garbage",
    "2026-11-28",
    "2026-11-28T12:00:00",
    "2026-13-40T12:00:00Z",
    "9999-12-31T00:00:00Z",
    5,
    null,
  ]) {
    assert.ok(!isGraphDateTime(bad), String(bad));
  }
});

test("events without id or with bad dates are set aside with a reason; the rest are kept", () => {
  const sorted = sortEvents([
    { id: "a", createdDateTime: "2026-11-28T12:00:00Z" },
    { createdDateTime: "2026-11-28T12:00:00Z" },
    { id: "", createdDateTime: "2026-11-28T12:00:00Z" },
    { id: 7, createdDateTime: "2026-11-28T12:00:00Z" },
    { id: "b", createdDateTime: "yesterday" },
    "not an object",
    null,
    { id: "c", createdDateTime: "2026-11-28T12:00:01Z" },
  ]);
  assert.deepEqual(
    sorted.valid.map((e) => e.id),
    ["a", "c"],
  );
  assert.deepEqual(
    sorted.rejected.map((r) => r.reason),
    [
      "missing or empty id",
      "missing or empty id",
      "missing or empty id",
      "missing or unparsable createdDateTime",
      "not a JSON object",
      "not a JSON object",
    ],
  );
  assert.equal(sorted.rejected[4]?.rawText, '"not an object"');
});

test("an id repeated within a page is stored once, the later copy winning", () => {
  const sorted = sortEvents([
    { id: "a", createdDateTime: "2026-11-28T12:00:00Z", v: 1 },
    { id: "a", createdDateTime: "2026-11-28T12:00:00Z", v: 2 },
  ]);
  assert.equal(sorted.valid.length, 1);
  assert.equal(sorted.valid[0]?.raw.v, 2);
  assert.equal(sorted.duplicates, 1);
});
