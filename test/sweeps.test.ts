// Late events beyond the tail's overlap are rescued by tiered sweeps; windows Graph cannot serve whole are split;
// the arrival-lag distribution and the sweeps' rescues are reported.

import assert from "node:assert/strict";
import { test } from "node:test";

import { dueSweeps, sweepWindow } from "../src/ingest/sweeps.ts";
import { type Simulator, startSimulator } from "../src/simulator/server.ts";
import { readStatus } from "../src/status.ts";
import { HOUR, MINUTE } from "../src/time.ts";
import { simulatorSuite } from "./helpers/db.ts";
import { expectedIds, ingestHarness, storedIds } from "./helpers/ingest.ts";

let sim: Simulator;
const { fresh } = simulatorSuite(
  () => startSimulator({ seed: 3, users: 10, signInsPerUserPerDay: 20, historyDays: 1 }),
  (s) => (sim = s),
);

test("dueSweeps and sweepWindow plan re-reads without reaching back before the tail's coverage", () => {
  const tiers = [
    { name: "3h/1h", spanMs: 3 * HOUR, everyMs: HOUR },
    { name: "2d/1d", spanMs: 48 * HOUR, everyMs: 24 * HOUR },
  ];
  const now = new Date("2026-11-28T12:00:00Z");
  assert.deepEqual(
    dueSweeps(tiers, new Map(), now).map((t) => t.name),
    ["2d/1d", "3h/1h"],
    "longest first",
  );
  const recent = new Map([
    ["3h/1h", new Date("2026-11-28T11:30:00Z")],
    ["2d/1d", new Date("2026-11-28T01:00:00Z")],
  ]);
  assert.deepEqual(dueSweeps(tiers, recent, now), []);
  recent.set("3h/1h", new Date("2026-11-28T10:59:00Z"));
  assert.deepEqual(
    dueSweeps(tiers, recent, now).map((t) => t.name),
    ["3h/1h"],
  );
  const tailStart = new Date("2026-11-28T11:30:00Z");
  assert.deepEqual(sweepWindow(tiers[0]!, now, tailStart, new Date("2026-11-01Z")), {
    from: new Date("2026-11-28T09:00:00Z"),
    to: tailStart,
  });
  assert.equal(
    sweepWindow(tiers[1]!, now, tailStart, new Date("2026-11-28T10:00:00Z"))?.from.toISOString(),
    "2026-11-28T10:00:00.000Z",
  );
  assert.equal(sweepWindow(tiers[0]!, now, tailStart, tailStart), undefined);
});

test("an event published two hours late, beyond the overlap, is rescued by the next due sweep", async () => {
  const db = await fresh();
  const h = ingestHarness(sim, db, { INITIAL_LOOKBACK: "6h", OVERLAP: "10m", SWEEPS: "3h/1h" });
  await h.run();
  const skipped = (await db.pool.query("select tier, pages from sweep_runs")).rows;
  assert.deepEqual(skipped, [{ tier: "3h/1h", pages: 0 }], "a window the first cycle just read is not swept again");

  const lateId = `very-late-${Date.now()}`;
  sim.addEvents([
    { id: lateId, createdDateTime: new Date(sim.now().getTime() - 2 * HOUR).toISOString(), status: { errorCode: 0 } },
  ]);
  const tailOnly = await h.run();
  assert.equal(tailOnly.inserted, 0, "the tail's 10-minute overlap cannot see it");
  assert.ok(!(await storedIds(db, sim.tenantId)).includes(lateId));

  // Two hours pass: the sweep is due again, and the tail's earlier reads are no longer recent.
  await db.pool.query("update sweep_runs set started_at = started_at - interval '2 hours'");
  await db.pool.query("update coverage set last_read_at = last_read_at - interval '2 hours'");
  await h.run();
  assert.ok((await storedIds(db, sim.tenantId)).includes(lateId), "the sweep stored it");
  const runs = (await db.pool.query("select rescued, pages from sweep_runs where pages > 0")).rows;
  assert.deepEqual(
    runs.map((r) => r.rescued),
    [1],
    "the sweep's rescue is counted",
  );
  const coverage = (await db.pool.query("select reader, count(*)::int as n from coverage group by 1 order by 1")).rows;
  assert.deepEqual(
    coverage.map((r) => r.reader),
    ["sweep", "tail"],
    "sweeps are recorded in the coverage ledger",
  );
  const [status] = await readStatus(db.pool, new Date(), 30 * 24 * HOUR);
  assert.equal(status?.sweeps[0]?.rescued, 1);
  assert.ok((status?.arrivalLag.events ?? 0) >= 1);
  assert.ok((status?.arrivalLag.maxSeconds ?? 0) >= 2 * 3600 - 60, "the late event shows in the arrival lag");
  assert.ok(h.logs().some((l) => l.msg === "sweep complete" && l.rescued === 1));
  await h.close();
});

test("a window that needs more pages than MAX_PAGES_PER_WINDOW is split and read completely", async () => {
  const db = await fresh();
  const now = sim.now().getTime();
  sim.addEvents(
    Array.from({ length: 40 }, (_, i) => ({
      id: `split-${now}-${i}`,
      createdDateTime: new Date(now - 5 * MINUTE - i * MINUTE).toISOString(),
      status: { errorCode: 0 },
    })),
  );
  const h = ingestHarness(sim, db, {
    INITIAL_LOOKBACK: "1h",
    PAGE_SIZE: "5",
    MAX_PAGES_PER_WINDOW: "3",
    SWEEPS: "off",
  });
  const result = await h.run();
  assert.deepEqual(
    new Set(await storedIds(db, sim.tenantId)),
    expectedIds(sim, result.windows[0]!.from, result.windows.at(-1)!.to),
  );
  assert.ok(h.logs().filter((l) => l.msg === "window split: Graph could not serve it whole").length >= 2);
  await h.close();
});
