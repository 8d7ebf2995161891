// The write path's economies (issue 14): what is no longer stored is still counted, and the page budget bounds the
// bytes of pages in flight.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { PageBudget } from "../src/ingest/page-budget.ts";
import { createTestDatabase, type TestDatabase } from "./helpers/db.ts";
import { upsertPages } from "./helpers/views-fixture.ts";

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase();
});
after(() => db.drop());

const policies = (results: string[]) =>
  results.map((result, i) => ({ id: `p${i}`, displayName: `Policy ${i}`, result, enforcedGrantControls: ["Mfa"] }));

test("0025/0028: a CA policy that did not apply gets no child row, ordinals keep their gaps, the daily rollup still counts it", async () => {
  const base = { createdDateTime: "2026-05-04T10:00:00Z", userPrincipalName: "ann@contoso.example" };
  await upsertPages(
    db.pool,
    "t-ca",
    [
      {
        ...base,
        id: "a",
        appliedConditionalAccessPolicies: policies(["notEnabled", "success", "notEnabled", "notApplied"]),
      },
      {
        ...base,
        id: "b",
        appliedConditionalAccessPolicies: policies([
          "notEnabled",
          "failure",
          "notEnabled",
          "notApplied",
          "reportOnlyNotApplied",
          "reportOnlyFailure",
        ]),
      },
    ],
    new Date(),
  );
  const rows = await db.pool.query(
    "select sign_in_id, ordinal, policy_id, result from sign_in_ca_policies where tenant_id = 't-ca' order by 1, 2",
  );
  assert.deepEqual(
    rows.rows.map((r) => [r.sign_in_id, r.ordinal, r.policy_id, r.result]),
    [
      ["a", 2, "p1", "success"],
      ["b", 2, "p1", "failure"],
      ["b", 6, "p5", "reportOnlyFailure"],
    ],
  );
  const view = await db.pool.query(
    `select policy_id, result, sign_ins::int from v_ca_policy_outcomes_daily where tenant_id = 't-ca' order by 1, 2`,
  );
  assert.deepEqual(
    view.rows.map((r) => [r.policy_id, r.result, r.sign_ins]),
    [
      ["p0", "notEnabled", 2],
      ["p1", "failure", 1],
      ["p1", "success", 1],
      ["p2", "notEnabled", 2],
      ["p3", "notApplied", 2],
      ["p4", "reportOnlyNotApplied", 1],
      ["p5", "reportOnlyFailure", 1],
    ],
  );
  // A re-publication that switches a policy on adds its row; the rollup moves the count.
  await upsertPages(
    db.pool,
    "t-ca",
    [
      {
        ...base,
        id: "a",
        appliedConditionalAccessPolicies: policies(["success", "success", "notEnabled", "notApplied"]),
      },
    ],
    new Date(),
  );
  const after = await db.pool.query(
    "select ordinal, result from sign_in_ca_policies where tenant_id = 't-ca' and sign_in_id = 'a' order by 1",
  );
  assert.deepEqual(
    after.rows.map((r) => [r.ordinal, r.result]),
    [
      [1, "success"],
      [2, "success"],
    ],
  );
  const p0 = await db.pool.query(
    `select result, sign_ins::int from v_ca_policy_outcomes_daily where tenant_id = 't-ca' and policy_id = 'p0' order by 1`,
  );
  assert.deepEqual(
    p0.rows.map((r) => [r.result, r.sign_ins]),
    [
      ["notEnabled", 1],
      ["success", 1],
    ],
  );
});

test("the page budget admits pages while their bytes fit, one page alone whatever its size, first come first served", async () => {
  const budget = new PageBudget(100);
  const a = await budget.acquire(60);
  const b = await budget.acquire(40);
  assert.equal(budget.used, 100);
  const order: string[] = [];
  const seen = (): string[] => [...order];
  const c = budget.acquire(50).then((g) => (order.push("c"), g));
  const d = budget.acquire(10).then((g) => (order.push("d"), g));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(seen(), [], "nothing fits");
  a.release();
  const gc = await c;
  const gd = await d;
  assert.deepEqual(seen(), ["c", "d"]);
  assert.equal(budget.used, 100);
  const e = budget.acquire(50).then((g) => (order.push("e"), g));
  b.release();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(seen(), ["c", "d"], "60 held + 50 > 100");
  gd.release();
  const ge = await e;
  assert.deepEqual(seen(), ["c", "d", "e"]);
  gc.release();
  ge.release();
  assert.equal(budget.used, 0);
  // Alone, a page larger than the whole budget is admitted.
  const huge = await budget.acquire(500);
  huge.release();
  huge.release(); // idempotent
  assert.equal(budget.used, 0);
});

test("backfill slices get slots while two full pages each fit the budget; one always", () => {
  const budget = new PageBudget(100);
  assert.equal(budget.sliceSlot(5), undefined, "no page seen yet: no second slice");
  const first = budget.sliceSlot(5, true);
  assert.ok(first, "forced: a backfill always runs one slice");
  budget.observe(10, 2);
  const second = budget.sliceSlot(5);
  assert.ok(second, "2 slices × 2 pages × 5 events × 5 bytes fit 100");
  assert.equal(budget.sliceSlot(5), undefined, "a third does not");
  second.release();
  second.release();
  const again = budget.sliceSlot(5);
  assert.ok(again, "a released slot is free again (once, however often released)");
  budget.observe(12, 1);
  assert.equal(budget.sliceSlot(5), undefined, "more bytes per event: fewer slices");
  const forced = budget.sliceSlot(5, true);
  assert.ok(forced, "another backfill still gets its one slice");
  for (const slot of [first, again, forced]) {
    slot.release();
  }
  // A short page of large events counts as a full one; the estimate decays after many smaller ones.
  for (let i = 0; i < 40; i++) {
    budget.observe(3, 1);
  }
  const slots = [budget.sliceSlot(5), budget.sliceSlot(5), budget.sliceSlot(5)];
  assert.ok(slots.every(Boolean), "3 × 2 × 5 × ~3 bytes fit 100");
  assert.equal(budget.sliceSlot(5), undefined);
  assert.equal(budget.slicesThatFit(5), 3, "what a backfill cuts its last stretch for");
  assert.equal(new PageBudget(100).slicesThatFit(5), 1, "before any page: one");
});

test("a page waiting for the budget gives up when its signal aborts, and the queue moves on", async () => {
  const budget = new PageBudget(10);
  const held = await budget.acquire(10);
  const controller = new AbortController();
  const waiting = budget.acquire(5, controller.signal);
  const next = budget.acquire(5);
  controller.abort(new Error("cycle aborted"));
  await assert.rejects(waiting, /cycle aborted/);
  held.release();
  (await next).release();
  assert.equal(budget.used, 0);
});

test("0026: raw is stored with lz4 where the server has it, in the partitions signin_ensure_partition creates", async () => {
  const { rows } = await db.pool.query<{ lz4: boolean }>(
    "select 'lz4' = any(enumvals) as lz4 from pg_settings where name = 'default_toast_compression'",
  );
  const expected = rows[0]?.lz4 ? "lz4" : "pglz";
  const big = { blob: "x".repeat(3000) + Array.from({ length: 400 }, (_, i) => `${i}`).join(",") };
  await upsertPages(
    db.pool,
    "t-lz4",
    [
      { id: "old-month", createdDateTime: "2026-05-04T10:00:00Z", ...big },
      { id: "new-month", createdDateTime: "2031-02-04T10:00:00Z", ...big },
    ],
    new Date(),
  );
  const stored = await db.pool.query(
    "select id, pg_column_compression(raw) as c from sign_ins where tenant_id = 't-lz4' order by id",
  );
  assert.deepEqual(
    stored.rows.map((r) => [r.id, r.c]),
    [
      ["new-month", expected],
      ["old-month", expected],
    ],
  );
});
