// Leases (migration 0019) in-process against a real PostgreSQL: exclusive, handed over when the holder's session
// ends, given up locally when the database stops answering, and readiness per stream (pure, time passed in).

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { onceExitCode } from "../src/commands/cycles.ts";
import type { TargetOutcome } from "../src/ingest/targets.ts";
import { ConfigError, EXIT } from "../src/errors.ts";
import { ReadinessTracker } from "../src/readiness.ts";
import { LeaseLostError, StreamLeases } from "../src/store/leases.ts";
import { PgProxy } from "./faults/pg-proxy.ts";
import { createTestDatabase, silentLog, type TestDatabase } from "./helpers/db.ts";

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase();
});
after(() => db.drop());

const T = "lease-tenant";
const target = (stream: string) => ({ tenant: { tenantId: T }, stream: { name: stream } });

async function eventually(what: string, probe: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > until) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

test("a lease is exclusive; a closed holder's leases go at once; shares follow the live `run` replicas", async () => {
  const options = { kind: "run" as const, ttlMs: 30_000, heartbeatMs: 1000 };
  const a = new StreamLeases(db.url, silentLog, options);
  const b = new StreamLeases(db.url, silentLog, options);
  try {
    assert.equal(await a.tryAcquire(T, "s1"), true);
    assert.equal(await a.tryAcquire(T, "s1"), true, "already ours");
    assert.equal(await b.tryAcquire(T, "s1"), false);
    const targets = ["s1", "s2", "s3", "s4"].map(target);
    const first = await a.share(targets);
    // b registered too (its tryAcquire), so two live `run` replicas: two pairs each.
    assert.equal(first.mine.length, 2);
    const second = await b.share(targets);
    assert.equal(second.mine.length, 2);
    assert.deepEqual(
      second.skipped.map((s) => s.holder?.holder),
      [a.id, a.id],
      "the skipped pairs name their holder",
    );
    await a.close();
    const third = await b.share(targets);
    assert.equal(third.mine.length, 4, "the survivor takes everything at its next share");
  } finally {
    await a.close();
    await b.close();
  }
});

test("a holder whose session is gone loses the lease at once; its next heartbeat aborts its signal", async () => {
  const options = { kind: "run" as const, ttlMs: 60_000, heartbeatMs: 300 };
  const a = new StreamLeases(db.url, silentLog, options);
  const b = new StreamLeases(db.url, silentLog, { ...options, kind: "once" });
  try {
    assert.equal(await a.tryAcquire(T, "gone"), true);
    const signal = a.signal(T, "gone");
    assert.ok(signal && !signal.aborted);
    await db.pool.query(
      `select pg_terminate_backend(pid) from pg_stat_activity
       where datname = current_database() and application_name = 'signin-ingest-leases'`,
    );
    // Well before the 60 s expiry: the holder's heartbeat session no longer exists.
    await eventually("b takes the lease", () => b.tryAcquire(T, "gone"));
    await eventually("a's signal aborts", () => signal.aborted);
    assert.ok(signal.reason instanceof LeaseLostError);
  } finally {
    await a.close();
    await b.close();
  }
});

test("a database that stops answering: the holder gives its leases up before they expire; then another takes them", async () => {
  const u = new URL(db.url);
  const proxy = await PgProxy.start({ host: u.hostname, port: Number(u.port) });
  const options = { kind: "run" as const, ttlMs: 3000, heartbeatMs: 500 };
  const a = new StreamLeases(proxy.url(db.url), silentLog, options);
  const b = new StreamLeases(db.url, silentLog, options);
  try {
    assert.equal(await a.tryAcquire(T, "cut"), true);
    const signal = a.signal(T, "cut");
    assert.ok(signal);
    proxy.setMode("blackhole");
    await eventually("a gives the lease up", () => signal.aborted);
    assert.ok(signal.reason instanceof LeaseLostError);
    // a's session still exists on the server (the proxy holds it open): b waits for the expiry, then takes over.
    await eventually("b takes the lease after its expiry", () => b.tryAcquire(T, "cut"));
  } finally {
    proxy.setMode("pass");
    await a.close();
    await b.close();
    await proxy.close();
  }
});

test("readiness: ok while cycles move windows, stalled when every cycle fails or reads no window, standby is fine", () => {
  const start = new Date("2027-01-02T10:00:00Z");
  const at = (s: number) => new Date(start.getTime() + s * 1000);
  const keys = [
    { tenantId: T, stream: "moving" },
    { tenantId: T, stream: "failing" },
    { tenantId: T, stream: "frozen" },
    { tenantId: T, stream: "elsewhere" },
  ];
  const tracker = new ReadinessTracker(keys, { maxAgeMs: 60_000, startedAt: start });
  const states = (s: number) => Object.fromEntries(tracker.report(at(s)).streams.map((r) => [r.stream, r.state]));
  assert.deepEqual(states(0), { moving: "starting", failing: "starting", frozen: "starting", elsewhere: "starting" });
  assert.equal(tracker.report(at(0)).ready, true, "a grace after start");
  for (let s = 10; s <= 120; s += 10) {
    tracker.observe(
      [
        { tenantId: T, stream: "moving", windows: 1 },
        { tenantId: T, stream: "failing", error: new Error("Graph answered 503") },
        { tenantId: T, stream: "frozen", windows: 0 },
        { tenantId: T, stream: "elsewhere", standby: true, holder: "replica-2" },
      ],
      at(s),
    );
  }
  const report = tracker.report(at(125));
  assert.equal(report.ready, false);
  const by = Object.fromEntries(report.streams.map((r) => [r.stream, r]));
  assert.equal(by.moving?.state, "ok");
  assert.equal(by.failing?.state, "stalled");
  assert.equal(by.failing?.lastError, "Graph answered 503");
  assert.equal(by.frozen?.state, "stalled", "cycles that read no window are not progress");
  assert.equal(by.elsewhere?.state, "standby");
  assert.equal(by.elsewhere?.holder, "replica-2");
  // Taking a lease over starts a new grace; no ticks at all (a tick failing before its cycles) ends in stalled.
  tracker.observe([{ tenantId: T, stream: "elsewhere", error: new Error("x") }], at(130));
  assert.equal(states(150).elsewhere, "starting");
  assert.equal(states(500).moving, "stalled");
});

test("readiness: a free stream beyond this replica's fair share is skipped, not standby", () => {
  const start = new Date("2027-01-02T10:00:00Z");
  const tracker = new ReadinessTracker([{ tenantId: T, stream: "free" }], { maxAgeMs: 60_000, startedAt: start });
  // No holder: nobody holds the lease, another replica's share takes it at its next tick.
  tracker.observe([{ tenantId: T, stream: "free", standby: true }], new Date(start.getTime() + 10_000));
  const [free] = tracker.report(new Date(start.getTime() + 20_000)).streams;
  assert.equal(free?.lastOutcome, "skipped");
  assert.equal(free?.lastError, "free, but beyond this replica's fair share");
  assert.equal(free?.holder, null);
  assert.equal(free?.state, "starting", "not standby: no live replica was seen holding it");
});

test("`once` exit code: 75 when a configured stream was skipped for another replica, whatever succeeded", () => {
  const t = (stream: string) => ({ stream: { name: stream } }) as unknown as TargetOutcome["target"];
  const ok = (stream: string): TargetOutcome => ({ target: t(stream), result: {} as TargetOutcome["result"] });
  const held = (stream: string): TargetOutcome => ({ target: t(stream), standby: true });
  assert.equal(onceExitCode([ok("a"), ok("b")]), EXIT.ok);
  assert.equal(onceExitCode([ok("a"), held("b")]), EXIT.temporary);
  assert.equal(onceExitCode([held("a"), { target: t("b"), error: new ConfigError(["x"]) }]), EXIT.config);
});
