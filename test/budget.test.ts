import assert from "node:assert/strict";
import { test } from "node:test";

import { GraphBudget } from "../src/graph/budget.ts";

test("at most perTenant requests per window per tenant; other tenants are independent", () => {
  let now = 0;
  const budget = new GraphBudget({ perTenant: 5, perApp: 122, windowMs: 10_000, reserve: 1 }, () => now);
  const signal = new AbortController().signal;
  for (let i = 0; i < 5; i++) {
    assert.equal(budget.delayFor("t1", "app"), 0);
    void budget.take("t1", "app", signal);
    now += 100;
  }
  assert.equal(budget.delayFor("t1", "app"), 10_000 - 500, "the sixth waits until the first leaves the window");
  assert.equal(budget.delayFor("t2", "app"), 0, "another tenant has its own window");
  now = 10_000;
  assert.equal(budget.delayFor("t1", "app"), 0);
});

test("backfill leaves `reserve` slots of each tenant window to the tail", () => {
  const now = 0;
  const budget = new GraphBudget({ perTenant: 5, perApp: 122, windowMs: 10_000, reserve: 1 }, () => now);
  const signal = new AbortController().signal;
  for (let i = 0; i < 4; i++) {
    void budget.take("t1", "app", signal, "backfill");
  }
  assert.ok(budget.delayFor("t1", "app", "backfill") > 0, "backfill stops at 4");
  assert.equal(budget.delayFor("t1", "app", "tail"), 0, "the tail still has a slot");
});

test("the per-app window spans tenants", () => {
  const now = 0;
  const budget = new GraphBudget({ perTenant: 5, perApp: 7, windowMs: 10_000, reserve: 0 }, () => now);
  const signal = new AbortController().signal;
  for (let i = 0; i < 7; i++) {
    void budget.take(`t${i}`, "app", signal);
  }
  assert.ok(budget.delayFor("t99", "app") > 0);
  assert.equal(budget.delayFor("t99", "other-app"), 0);
});

test("a 429 blocks the tenant until Retry-After has passed; take() waits for real", async () => {
  const budget = new GraphBudget({ perTenant: 5, perApp: 122, windowMs: 10_000, reserve: 0 });
  budget.penalize("t1", Date.now() + 150);
  const started = Date.now();
  await budget.take("t1", "app", new AbortController().signal);
  assert.ok(Date.now() - started >= 140);
  const aborted = new AbortController();
  budget.penalize("t1", Date.now() + 60_000);
  const waiting = budget.take("t1", "app", aborted.signal);
  aborted.abort(new Error("stop"));
  await assert.rejects(waiting, /stop/);
});

test("onPenalty: each listener hears every penalty (tenant and until) until it unsubscribes", () => {
  const now = 0;
  const budget = new GraphBudget({ perTenant: 5, perApp: 122, windowMs: 10_000, reserve: 0 }, () => now);
  const first: Array<[string, number]> = [];
  const second: string[] = [];
  const stopFirst = budget.onPenalty((tenantId, untilMs) => first.push([tenantId, untilMs]));
  budget.onPenalty((tenantId) => second.push(tenantId));
  budget.penalize("t1", 5_000);
  stopFirst();
  budget.penalize("t2", 7_000);
  assert.deepEqual(first, [["t1", 5_000]]);
  assert.deepEqual(second, ["t1", "t2"]);
  assert.equal(budget.delayFor("t2", "app"), 7_000, "the penalty itself still applies");
});
