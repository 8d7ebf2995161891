// The ingest path end to end, in process: real simulator over HTTP, real PostgreSQL.

import assert from "node:assert/strict";
import { test } from "node:test";

import { AccessError, CredentialError, GraphProtocolError, TemporaryError } from "../src/errors.ts";
import { MalformedPageError } from "../src/graph/client.ts";
import { Metrics } from "../src/metrics.ts";
import { type Simulator, startSimulator } from "../src/simulator/server.ts";
import { readCheckpoint } from "../src/store/checkpoints.ts";
import { HOUR, MINUTE } from "../src/time.ts";
import { simulatorSuite } from "./helpers/db.ts";
import { seedRecent } from "./helpers/seed.ts";
import { expectedIds, ingestHarness, storedIds } from "./helpers/ingest.ts";

let sim: Simulator;
const { fresh } = simulatorSuite(
  () => startSimulator({ seed: 7, users: 25, signInsPerUserPerDay: 24, historyDays: 2 }),
  (s) => (sim = s),
);

const tokenRequests = () => sim.requests().filter((r) => r.path.includes("/oauth2/v2.0/token")).length;
const graphRequests = () => sim.requests().filter((r) => r.path.includes("/auditLogs/"));

test("one cycle pages to the end and stores exactly the simulator's events in the window; a re-run inserts nothing", async () => {
  const db = await fresh();
  sim.setFaults([]);
  sim.resetRequests();
  const h = ingestHarness(sim, db, { PAGE_SIZE: "40" });
  const first = await h.run();
  const window = { from: first.windows[0]!.from, to: first.windows.at(-1)!.to };
  const expected = expectedIds(sim, window.from, window.to);
  assert.ok(expected.size > 200, `the simulator shows a realistic day (${expected.size} events)`);
  assert.ok(first.pages > 5, "several pages were followed through @odata.nextLink");
  assert.deepEqual(new Set(await storedIds(db, sim.tenantId)), expected);
  assert.equal(first.inserted, expected.size);
  assert.equal((await readCheckpoint(db.pool, sim.tenantId, "interactiveUser"))?.getTime(), window.to.getTime());

  // The simulator keeps creating sign-ins in real time: a re-run inserts only those created after the first window.
  const second = await h.run();
  const later = expectedIds(sim, window.from, second.windows.at(-1)!.to);
  assert.equal(second.inserted, later.size - expected.size, "an idempotent re-run inserts nothing it already stored");
  assert.equal(second.updated, 0);
  assert.equal(tokenRequests(), 1, "the token is cached across pages and cycles");
  const texts = h.logText();
  assert.ok(!texts.includes(sim.clientSecret), "the client secret never appears in logs");
  const cycleLine = h.logs().find((l) => l.msg === "cycle complete");
  for (const field of [
    "window_from",
    "window_to",
    "pages",
    "fetched",
    "inserted",
    "updated",
    "unchanged",
    "rejected",
    "ms",
  ]) {
    assert.ok(cycleLine && field in cycleLine, `cycle line has ${field}`);
  }
  await h.close();
});

test("late events inside the overlap are caught, and a changed re-publish updates its row", async () => {
  const db = await fresh();
  sim.setFaults([]);
  const existing = `known-${Date.now()}`;
  sim.addEvents([
    {
      id: existing,
      createdDateTime: new Date(sim.now().getTime() - 20 * MINUTE).toISOString(),
      userPrincipalName: "known@example.com",
      riskLevelDuringSignIn: "none",
    },
  ]);
  const h = ingestHarness(sim, db);
  const first = await h.run();
  const checkpoint = first.windows.at(-1)!.to;
  const lateId = `late-${Date.now()}`;
  sim.addEvents([
    {
      id: lateId,
      createdDateTime: new Date(checkpoint.getTime() - 10 * MINUTE).toISOString(),
      userPrincipalName: "late.arrival@example.com",
      status: { errorCode: 0 },
    },
  ]);
  sim.republish(existing, { riskLevelDuringSignIn: "high", riskState: "atRisk" });
  const second = await h.run();
  assert.equal(second.inserted, 1, "the late event is stored");
  assert.equal(second.updated, 1, "the re-published event is updated");
  const row = (
    await db.pool.query("select risk_level_during_sign_in, revision from sign_ins where id = $1", [existing])
  ).rows[0];
  assert.deepEqual(row, { risk_level_during_sign_in: "high", revision: 2 });
  await h.close();
});

test("429 (with and without Retry-After), 5xx, connection resets and truncated bodies are retried to a complete result", async () => {
  const db = await fresh();
  sim.resetRequests();
  sim.setFaults([
    { match: { requestNumber: 1 }, kind: "status", status: 429, retryAfter: "1" },
    { match: { requestNumber: 2 }, kind: "status", status: 429 },
    { match: { requestNumber: 4 }, kind: "status", status: 503 },
    { match: { requestNumber: 6 }, kind: "reset" },
    { match: { requestNumber: 8 }, kind: "truncate" },
    { match: { requestNumber: 9 }, kind: "status", status: 500 },
  ]);
  const h = ingestHarness(sim, db, { PAGE_SIZE: "100", MAX_RETRIES: "4" });
  const result = await h.run();
  sim.setFaults([]);
  const expected = expectedIds(sim, result.windows[0]!.from, result.windows.at(-1)!.to);
  assert.deepEqual(new Set(await storedIds(db, sim.tenantId)), expected);
  const requests = graphRequests();
  const gap = new Date(requests[1]!.at).getTime() - new Date(requests[0]!.at).getTime();
  assert.ok(gap >= 1000, `Retry-After: 1 was honoured (waited ${gap} ms)`);
  const retries = h.logs().filter((l) => l.msg === "request will be retried");
  assert.ok(retries.length >= 6, `each fault was retried (${retries.length})`);
  await h.close();
});

test("a malformed page fails the cycle, stores nothing from it and keeps the checkpoint; the next cycle completes", async () => {
  const db = await fresh();
  seedRecent(sim, 30, "malformed-test", 110);
  for (const kind of ["malformed", "no-value", "html"] as const) {
    sim.resetRequests();
    sim.setFaults([{ match: { requestNumber: 2 }, kind }]);
    const h = ingestHarness(sim, db, { PAGE_SIZE: "5", INITIAL_LOOKBACK: "3h" });
    const before = await storedIds(db, sim.tenantId);
    await assert.rejects(h.run(), MalformedPageError, kind);
    assert.equal(
      await readCheckpoint(db.pool, sim.tenantId, "interactiveUser"),
      undefined,
      `${kind}: checkpoint unmoved`,
    );
    const afterFailure = await storedIds(db, sim.tenantId);
    assert.ok(afterFailure.length - before.length <= 5, `${kind}: at most the first page was stored`);
    await h.close();
  }
  sim.setFaults([]);
  const h = ingestHarness(sim, db, { PAGE_SIZE: "5", INITIAL_LOOKBACK: "3h" });
  const result = await h.run();
  assert.deepEqual(
    new Set(await storedIds(db, sim.tenantId)),
    expectedIds(sim, result.windows[0]!.from, result.windows.at(-1)!.to),
  );
  const failures = (await db.pool.query("select count(*)::int as n from cycles where outcome = 'failure'")).rows[0].n;
  assert.equal(failures, 3, "failed cycles are recorded");
  await h.close();
});

test("events without an id or with a bad createdDateTime are set aside; the rest of the page is stored", async () => {
  const db = await fresh();
  sim.setFaults([]);
  const at = new Date(sim.now().getTime() - 30 * MINUTE).toISOString();
  const tag = `bad-${Date.now()}`;
  sim.addEvents([
    { createdDateTime: at, userPrincipalName: `${tag}@example.com` },
    { id: `${tag}-date`, createdDateTime: at.replace("T", " ") + "junk" },
    { id: `${tag}-ok`, createdDateTime: at },
  ]);
  const h = ingestHarness(sim, db, { INITIAL_LOOKBACK: "1h" });
  const result = await h.run();
  assert.ok(result.rejected >= 1);
  const rejected = (
    await db.pool.query("select reason, raw_text from rejected_events where raw_text like $1", [`%${tag}%`])
  ).rows;
  assert.deepEqual(rejected.map((r) => r.reason).sort(), ["missing or empty id"]);
  assert.ok((await storedIds(db, sim.tenantId)).includes(`${tag}-ok`));
  await h.close();
});

test("an event holding U+0000 (which PostgreSQL cannot store) is set aside; the rest of its page is stored", async () => {
  const own = await startSimulator({ generate: false });
  try {
    const db = await fresh();
    const at = new Date(own.now().getTime() - 30 * MINUTE).toISOString();
    own.addEvents([
      { id: "nul-before", createdDateTime: at },
      { id: "nul-event", createdDateTime: at, userDisplayName: "Ann\u0000" },
      { id: "nul-after", createdDateTime: at },
    ]);
    const h = ingestHarness(own, db, { INITIAL_LOOKBACK: "1h" });
    const result = await h.run();
    assert.equal(result.rejected, 1);
    assert.deepEqual((await storedIds(db, own.tenantId)).sort(), ["nul-after", "nul-before"]);
    const { rows } = await db.pool.query("select reason, raw_text from rejected_events");
    assert.deepEqual(
      rows.map((r) => r.reason),
      ["holds a U+0000 (NUL) character, which PostgreSQL cannot store"],
    );
    assert.match(rows[0].raw_text, /nul-event/);
    await h.close();
  } finally {
    await own.close();
  }
});

test("retries are bounded: a run of 5xx fails the cycle as temporary and leaves the checkpoint", async () => {
  const db = await fresh();
  sim.resetRequests();
  sim.setFaults([{ match: { path: "/auditLogs/" }, kind: "status", status: 502 }]);
  const h = ingestHarness(sim, db, { MAX_RETRIES: "2" });
  await assert.rejects(h.run(), TemporaryError);
  assert.equal(graphRequests().length, 3, "1 attempt + 2 retries");
  assert.equal(await readCheckpoint(db.pool, sim.tenantId, "interactiveUser"), undefined);
  sim.setFaults([]);
  await h.close();
});

test("401 renews the token once and retries the same request", async () => {
  const db = await fresh();
  seedRecent(sim, 30, "token-test", 110);
  sim.resetRequests();
  const metrics = new Metrics({ retentionMs: HOUR, defaultMetrics: false });
  const h = ingestHarness(sim, db, { PAGE_SIZE: "10", INITIAL_LOOKBACK: "3h" }, { metrics });
  await h.ingester.graphFor(sim.tenantId).prepare(new AbortController().signal);
  sim.setFaults([{ match: { requestNumber: 2 }, kind: "expire-token" }]);
  const result = await h.run();
  sim.setFaults([]);
  assert.ok(result.pages >= 2);
  assert.equal(tokenRequests(), 2, "one renewal after the 401");
  assert.equal((await metrics.tokenRenewals.get()).values[0]?.value, 2, "two tokens obtained");
  await h.close();
});

test("licence and permission 403s are reported as what they are, without retrying", async () => {
  const db = await fresh();
  for (const [mode, code, fix] of [
    ["no-licence", "Authentication_RequestFromNonPremiumTenantOrB2CTenant", "P1 or P2"],
    ["no-permission", "Authorization_RequestDenied", "AuditLog.Read.All"],
  ] as const) {
    sim.resetRequests();
    sim.setMode(mode);
    const h = ingestHarness(sim, db);
    const error = await h.run().then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(error instanceof AccessError, mode);
    assert.equal(error.code, code);
    assert.ok(error.message.includes(fix), error.message);
    assert.equal(graphRequests().length, 1, `${mode}: no retry storm`);
    await h.close();
  }
  sim.setMode("normal");
});

test("a wrong secret is a credential error naming AADSTS7000215, never echoing the secret", async () => {
  const db = await fresh();
  const h = ingestHarness(sim, db, { AZURE_CLIENT_SECRET: "definitely-wrong-secret" });
  const error = await h.run().then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(error instanceof CredentialError);
  assert.equal(error.code, "AADSTS7000215");
  assert.ok(!error.message.includes("definitely-wrong-secret"));
  assert.ok(!h.logText().includes("definitely-wrong-secret"));
  await h.close();
});

test("a nextLink to another host is refused and the token never travels there", async () => {
  const db = await fresh();
  sim.resetRequests();
  sim.setFaults([{ match: { requestNumber: 1 }, kind: "foreign-next-link", host: "evil.example.com" }]);
  const h = ingestHarness(sim, db, { PAGE_SIZE: "20" });
  await assert.rejects(
    h.run(),
    (e: unknown) => e instanceof GraphProtocolError && /evil\.example\.com/.test(e.message),
  );
  assert.equal(await readCheckpoint(db.pool, sim.tenantId, "interactiveUser"), undefined);
  sim.setFaults([]);
  await h.close();
});

test("a host clock ahead of Graph does not push the window past what Graph has published", async () => {
  const db = await fresh();
  sim.setFaults([]);
  const ahead = { now: () => new Date(Date.now() + 15 * MINUTE) };
  const h = ingestHarness(sim, db, { SETTLE: "2m" }, { clock: ahead });
  const result = await h.run();
  const end = result.windows.at(-1)!.to.getTime();
  assert.ok(end <= sim.now().getTime() - 2 * MINUTE + 1000, "window end follows Graph's Date header");
  assert.ok(
    h.logs().some((l) => String(l.msg).includes("host clock disagrees")),
    "skew is logged",
  );
  await h.close();
});

test("a long gap is caught up in concurrent slices, then the checkpoint moves to its end", async () => {
  const db = await fresh();
  sim.setFaults([]);
  const h = ingestHarness(sim, db, { INITIAL_LOOKBACK: "2d", MAX_WINDOW: "6h", PAGE_SIZE: "50", SWEEPS: "off" });
  const result = await h.run();
  assert.ok(result.windows.length > 4);
  assert.ok(h.logs().some((l) => l.msg === "catching up a long gap"));
  const from = result.windows[0]!.from;
  const to = result.windows.at(-1)!.to;
  assert.deepEqual(new Set(await storedIds(db, sim.tenantId)), expectedIds(sim, from, to));
  assert.equal((await readCheckpoint(db.pool, sim.tenantId, "interactiveUser"))?.getTime(), to.getTime());
  assert.equal(result.inserted, expectedIds(sim, from, to).size);
  const again = await h.run();
  assert.equal(again.inserted, expectedIds(sim, from, again.windows.at(-1)!.to).size - expectedIds(sim, from, to).size);
  await h.close();
});

test("a catch-up that fails part-way never moves the checkpoint past a slice that was not read", async (t) => {
  const db = await fresh();
  sim.resetRequests();
  // The oldest slice is slow; later slices run concurrently and complete; then one fails for good.
  sim.setFaults([
    { match: { requestNumber: 1 }, kind: "hang", ms: 2000 },
    { match: { requestNumber: 12 }, kind: "status", status: 400 },
  ]);
  const h = ingestHarness(sim, db, { INITIAL_LOOKBACK: "2d", MAX_WINDOW: "6h", PAGE_SIZE: "50", SWEEPS: "off" });
  await assert.rejects(h.run());
  sim.setFaults([]);
  const slices = (await db.pool.query("select count(*)::int as n from coverage")).rows[0].n as number;
  t.diagnostic(`${slices} later slices completed before the failure`);
  assert.equal(await readCheckpoint(db.pool, sim.tenantId, "interactiveUser"), undefined, "checkpoint unmoved");
  const again = await h.run();
  const to = again.windows.at(-1)!.to;
  // Nothing of the second run's range is missing. Anything more stored is what the first run read before it failed,
  // between its own start of the range and the second's (INITIAL_LOOKBACK counts from each run's start, so on a slow
  // machine the ranges differ by the seconds between the runs).
  const stored = new Set(await storedIds(db, sim.tenantId));
  const expected = expectedIds(sim, again.windows[0]!.from, to);
  assert.deepEqual(
    [...expected].filter((id) => !stored.has(id)),
    [],
    "every event of the range is stored",
  );
  const firstFrom = h.logs().find((l) => l.msg === "catching up a long gap")?.window_from;
  assert.ok(typeof firstFrom === "string");
  const firstRange = expectedIds(sim, new Date(firstFrom), to);
  assert.deepEqual(
    [...stored].filter((id) => !firstRange.has(id)),
    [],
    "nothing stored outside what was read",
  );
  assert.equal((await readCheckpoint(db.pool, sim.tenantId, "interactiveUser"))?.getTime(), to.getTime());
  await h.close();
});
