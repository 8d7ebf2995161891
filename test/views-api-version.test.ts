// Interactive sign-ins are read from Graph beta by default (signInEventTypes filter, beta shape, api_version 'beta');
// INTERACTIVE_API_VERSION=v1.0 reads them from v1.0 (v1.0 shape, api_version 'v1.0'). Through the real daemon path.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import type { CycleResult } from "../src/ingest/cycle.ts";
import { streamSpec } from "../src/events/streams.ts";
import { type Simulator, startSimulator } from "../src/simulator/server.ts";
import { createTestDatabase, type TestDatabase } from "./helpers/db.ts";
import { expectedIds, ingestHarness } from "./helpers/ingest.ts";

let sim: Simulator;
before(async () => {
  sim = await startSimulator({ seed: 11, users: 15, historyDays: 1 });
});
after(() => sim.close());

async function ingest(
  env: Record<string, string>,
): Promise<{ db: TestDatabase; rows: Array<Record<string, unknown>>; result: CycleResult }> {
  const db = await createTestDatabase();
  const harness = ingestHarness(sim, db, env);
  let result: CycleResult;
  try {
    result = await harness.run();
  } finally {
    await harness.close();
  }
  const { rows } = await db.pool.query(
    `select id, api_version, stream, user_agent, authentication_requirement, raw ? 'authenticationDetails' as has_details,
       raw ? 'signInEventTypes' as has_types
     from sign_ins where tenant_id = $1`,
    [sim.tenantId],
  );
  return { db, rows, result };
}

test("by default the interactive stream is read from beta with a signInEventTypes filter, rows marked beta", async () => {
  assert.equal(streamSpec("interactiveUser").version, "beta");
  const before = sim.requests().length;
  const { db, rows, result } = await ingest({});
  try {
    const graph = sim
      .requests()
      .slice(before)
      .filter((r) => r.kind === "graph");
    assert.ok(graph.length > 0);
    for (const r of graph) {
      assert.match(r.path, /^\/beta\/auditLogs\/signIns$/);
      assert.match(r.query.$filter ?? "", /signInEventTypes\/any\(t: t eq 'interactiveUser'\)/);
    }
    assert.ok(rows.length > 20, `rows: ${rows.length}`);
    for (const r of rows) {
      assert.equal(r.api_version, "beta");
      assert.equal(r.stream, "interactiveUser");
      assert.equal(r.has_details, true, "beta shape: authenticationDetails");
      assert.equal(r.has_types, true);
    }
    assert.ok(rows.some((r) => typeof r.user_agent === "string" && r.user_agent !== ""));
    assert.ok(rows.some((r) => r.authentication_requirement === "multiFactorAuthentication"));
    // Exactly the simulator's interactive sign-ins of the window (no other event type slipped in).
    const from = new Date(String(result.windows[0]?.from));
    const expected = expectedIds(sim, from, new Date(String(result.checkpoint)));
    assert.deepEqual(new Set(rows.map((r) => String(r.id))), expected);
  } finally {
    await db.drop();
  }
});

test("INTERACTIVE_API_VERSION=v1.0 reads v1.0 (its shape), rows marked v1.0", async () => {
  assert.equal(streamSpec("interactiveUser", "v1.0").version, "v1.0");
  const before = sim.requests().length;
  const { db, rows } = await ingest({ INTERACTIVE_API_VERSION: "v1.0" });
  try {
    const graph = sim
      .requests()
      .slice(before)
      .filter((r) => r.kind === "graph");
    assert.ok(graph.length > 0 && graph.every((r) => r.path === "/v1.0/auditLogs/signIns"));
    assert.ok(rows.length > 20);
    for (const r of rows) {
      assert.equal(r.api_version, "v1.0");
      assert.equal(r.has_details, false, "v1.0 has no authenticationDetails");
      assert.equal(r.user_agent, null);
    }
  } finally {
    await db.drop();
  }
});
