// Backfill: complete and duplicate-free against the simulator, resumable after SIGKILL from the coverage ledger,
// within the throttle budget when slices run concurrently, and readable progress when not on a terminal.

import assert from "node:assert/strict";
import { test } from "node:test";

import type { DestinationStream } from "pino";

import { createIngester } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { GraphBudget } from "../src/graph/budget.ts";
import { type BackfillDeps, gapsToRead, runBackfill } from "../src/ingest/backfill.ts";
import { emptyCounts, INTERACTIVE_STREAM, readWindow } from "../src/ingest/reader.ts";
import { createLogger } from "../src/log.ts";
import { type Simulator, startSimulator } from "../src/simulator/server.ts";
import { HOUR } from "../src/time.ts";
import { daemonEnv, startCli } from "./helpers/daemon.ts";
import { simulatorSuite, type TestDatabase } from "./helpers/db.ts";
import { expectedIds, storedIds } from "./helpers/ingest.ts";

let sim: Simulator;
const { fresh } = simulatorSuite(
  () => startSimulator({ seed: 11, users: 25, signInsPerUserPerDay: 24, historyDays: 3 }),
  (s) => (sim = s),
);

/** The real GraphClient (with its own budget) and reader deps, pointed at `s`. */
function backfillDeps(s: Simulator, db: TestDatabase, env: Record<string, string> = {}) {
  const config = loadConfig({
    DATABASE_URL: db.url,
    AZURE_TENANT_ID: s.tenantId,
    AZURE_CLIENT_ID: s.clientId,
    AZURE_CLIENT_SECRET: s.clientSecret,
    AZURE_AUTHORITY_HOST: s.url,
    GRAPH_ENDPOINT: s.url,
    RETRY_BASE_DELAY: "10ms",
    MAX_RETRIES: "3",
    HTTP_TIMEOUT: "5s",
    LOG_LEVEL: "debug",
    GRAPH_BUDGET_PER_TENANT: "10000",
    ...env,
  });
  let text = "";
  const destination: DestinationStream = { write: (line: string) => void (text += line) };
  const log = createLogger(config.logLevel, destination);
  const budget = new GraphBudget({
    perTenant: config.budgetPerTenant,
    perApp: config.budgetPerApp,
    windowMs: config.budgetWindowMs,
    reserve: 0,
  });
  const ingester = createIngester(config, db.pool, log, { budget });
  // As `backfill` does (src/commands/backfill.ts): the ingester's reader wiring and the backfill's own budget.
  const deps: BackfillDeps = { ...ingester.readerDepsFor(config.tenants[0]!.tenantId), budget };
  const logs = () =>
    text
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { deps, log, logs, close: () => ingester.close() };
}

const graphRequests = (s: Simulator) => s.requests().filter((r) => r.kind === "graph");

function hoursAgo(hours: number): Date {
  return new Date(Math.floor((sim.now().getTime() - hours * HOUR) / 1000) * 1000);
}

test("the page budget bounds how many slices run at once (PAGE_MEMORY_BYTES), and everything is still read", async () => {
  const from = hoursAgo(50);
  const to = hoursAgo(1);
  const expected = expectedIds(sim, from, to);
  const mostAtOnce = async (env: Record<string, string>) => {
    const db = await fresh();
    const b = backfillDeps(sim, db, { PAGE_SIZE: "999", ...env });
    let most = 0;
    try {
      await runBackfill(b.deps, INTERACTIVE_STREAM, from, to, {
        log: b.log,
        signal: new AbortController().signal,
        concurrency: 4,
        sliceMs: 2 * HOUR,
        minSliceMs: 10 * 60_000,
        onProgress: (p) => (most = Math.max(most, p.slicesRunning)),
      });
      assert.deepEqual(new Set(await storedIds(db, sim.tenantId)), expected);
    } finally {
      await b.close();
    }
    return most;
  };
  // Two full pages of 999 simulator events (~2 KB each) do not fit 1 MiB: one slice at a time.
  assert.equal(await mostAtOnce({ PAGE_MEMORY_BYTES: String(1024 * 1024) }), 1);
  // The default (32 MiB) holds the concurrency limit's four.
  assert.ok((await mostAtOnce({})) > 1, "several slices at once with the default budget");
});

test("a window fetches its next page while it stores one, unless told not to (slices beside others)", async () => {
  const from = hoursAgo(20);
  const to = hoursAgo(1);
  // At each page's commit: how many of this window's pages Graph has been asked for. `pages`: how many the window
  // has (known from a first read), so that a fetch ahead is awaited for every page but the last.
  const askedAtCommit = async (prefetch: boolean, pages = 0) => {
    const db = await fresh();
    const b = backfillDeps(sim, db, { PAGE_SIZE: "20" });
    const asked: number[] = [];
    sim.resetRequests();
    try {
      const deps = {
        ...b.deps,
        afterPageCommit: async (page: number) => {
          // A fetch ahead was started before this page's store: wait (bounded) until it reached Graph.
          for (let i = 0; prefetch && page < pages && i < 500 && graphRequests(sim).length <= page; i++) {
            await new Promise((r) => setTimeout(r, 10));
          }
          asked.push(graphRequests(sim).length);
        },
      };
      const counts = emptyCounts();
      await readWindow(
        deps,
        INTERACTIVE_STREAM,
        { from, to },
        {
          log: b.log,
          signal: new AbortController().signal,
          reader: "backfill",
          priority: "backfill",
          prefetch: () => prefetch,
        },
        counts,
      );
      assert.deepEqual(new Set(await storedIds(db, sim.tenantId)), expectedIds(sim, from, to));
      return { pages: counts.pages, asked };
    } finally {
      await b.close();
    }
  };
  const after = await askedAtCommit(false);
  assert.ok(after.pages >= 3, `${after.pages} pages`);
  assert.deepEqual(
    after.asked,
    after.asked.map((_, i) => i + 1),
    "without: page n + 1 is asked for only after page n is committed",
  );
  const ahead = await askedAtCommit(true, after.pages);
  assert.equal(ahead.pages, after.pages);
  assert.deepEqual(
    ahead.asked,
    ahead.asked.map((_, i) => Math.min(i + 2, after.pages)),
    "with: page n + 1 is asked for before page n is committed",
  );
});

test("a window's pages are freed as each is stored, not left for a garbage collection", async () => {
  const db = await fresh();
  const from = hoursAgo(30);
  const to = hoursAgo(1);
  const b = backfillDeps(sim, db, { PAGE_SIZE: "40" });
  try {
    // Every page body the reader gets from Graph, by identity, and whether it was an ArrayBuffer of its own when it
    // came (Node pools buffers below 32 KB: a short last page shares its memory and is left to the collector).
    const bodies: Array<{ json: Buffer; own: boolean }> = [];
    const real = b.deps.graph;
    const graph = new Proxy(real, {
      get: (target, key) => {
        if (key === "getPageBody") {
          return async (...args: Parameters<typeof real.getPageBody>) => {
            const body = await target.getPageBody(...args);
            bodies.push({ json: body.json, own: body.json.buffer.byteLength === body.json.length });
            return body;
          };
        }
        const value: unknown = Reflect.get(target, key);
        return typeof value === "function" ? (value as () => unknown).bind(target) : value;
      },
    });
    const counts = emptyCounts();
    await readWindow(
      { ...b.deps, graph },
      INTERACTIVE_STREAM,
      { from, to },
      { log: b.log, signal: new AbortController().signal, reader: "backfill", priority: "backfill" },
      counts,
    );
    assert.deepEqual(new Set(await storedIds(db, sim.tenantId)), expectedIds(sim, from, to));
    assert.ok(counts.pages >= 3, `${counts.pages} pages`);
    assert.equal(bodies.length, counts.pages);
    const own = bodies.filter((b) => b.own);
    assert.ok(own.length >= counts.pages - 1, "full pages of 40 simulator sign-ins (~60 KB) are their own buffers");
    assert.deepEqual(
      own.map((b) => b.json.length),
      own.map(() => 0),
      "each stored page's memory was given back",
    );
  } finally {
    await b.close();
  }
});

test("a concurrent backfill stores exactly the simulator's events of the range, once each; a re-run reads nothing", async () => {
  const db = await fresh();
  const from = hoursAgo(50);
  const to = hoursAgo(1);
  const b = backfillDeps(sim, db, { PAGE_SIZE: "40" });
  sim.resetRequests();
  // One request fails outright (no retries): its slice is split in two and both halves are read.
  sim.setFaults([{ match: { requestNumber: 5 }, kind: "status", status: 503 }]);
  const bRetryless = backfillDeps(sim, db, { PAGE_SIZE: "40", MAX_RETRIES: "0" });
  const progress: number[] = [];
  const result = await runBackfill(bRetryless.deps, INTERACTIVE_STREAM, from, to, {
    log: bRetryless.log,
    signal: new AbortController().signal,
    concurrency: 4,
    sliceMs: 4 * HOUR,
    minSliceMs: 10 * 60_000,
    onProgress: (p) => progress.push(p.slicesDone),
  });
  sim.setFaults([]);
  const expected = expectedIds(sim, from, to);
  assert.ok(expected.size > 500, `a realistic range (${expected.size} events)`);
  const stored = await storedIds(db, sim.tenantId);
  assert.equal(stored.length, new Set(stored).size, "no duplicates");
  assert.deepEqual(new Set(stored), expected);
  // Events a failed slice had already stored count as unchanged when its halves read them again.
  assert.ok(result.inserted <= expected.size && result.inserted + result.unchanged >= expected.size);
  assert.ok(result.splits >= 1, "the failed slice was split");
  assert.ok(result.slices >= 8, `several slices (${result.slices})`);
  assert.ok(progress.length > result.slices, "progress was reported");
  assert.deepEqual(
    await gapsToRead(db.pool, sim.tenantId, "interactiveUser", from, to),
    [],
    "the ledger covers it all",
  );
  const ledger = (await db.pool.query("select sum(events)::int as events from coverage")).rows[0];
  assert.ok(ledger.events >= expected.size, "the ledger's event counts add up");

  sim.resetRequests();
  const again = await runBackfill(b.deps, INTERACTIVE_STREAM, from, to, {
    log: b.log,
    signal: new AbortController().signal,
  });
  assert.equal(again.slices, 0);
  assert.equal(graphRequests(sim).length, 0, "a covered range costs no request");
  await b.close();
  await bRetryless.close();
});

test("after SIGKILL mid-backfill, a re-run reads only the slices the ledger does not cover, and ends complete", async () => {
  const slow = await startSimulator({
    seed: 12,
    users: 25,
    signInsPerUserPerDay: 24,
    historyDays: 3,
    pageLatencyMs: 60,
  });
  try {
    const db = await fresh();
    const now = slow.now().getTime();
    const from = new Date(Math.floor((now - 40 * HOUR) / 1000) * 1000);
    const to = new Date(Math.floor((now - HOUR) / 1000) * 1000);
    const env = daemonEnv(slow, db.url, { PAGE_SIZE: "20" });
    const args = [
      "backfill",
      "--from",
      from.toISOString(),
      "--to",
      to.toISOString(),
      "--concurrency",
      "2",
      "--slice",
      "2h",
    ];
    const first = startCli(args, env);
    let stored = 0;
    await first.waitForLog((l) => l.msg === "slice stored" && ++stored >= 3, 30_000);
    first.child.kill("SIGKILL");
    const killed = await first.finished;
    assert.equal(killed.signal, "SIGKILL");
    const covered = (
      await db.pool.query<{ window_from: Date; window_to: Date }>(
        "select window_from, window_to from coverage where reader = 'backfill'",
      )
    ).rows;
    assert.ok(covered.length >= 3, `slices recorded before the kill (${covered.length})`);
    const missing = await gapsToRead(db.pool, slow.tenantId, "interactiveUser", from, to);
    assert.ok(missing.length > 0, "the kill left part of the range unread");

    slow.resetRequests();
    const second = await startCli(args, env).finished;
    assert.equal(second.code, 0, second.stderr);
    // Every slice the re-run started (a request without $skiptoken) lies in a gap, never in a covered window.
    const starts = graphRequests(slow).filter((r) => r.status === 200 && !("$skiptoken" in r.query));
    assert.ok(starts.length > 0);
    for (const r of starts) {
      const [, ge, le] = /ge (\S+) and createdDateTime le ([^\s)]+)/.exec(r.query.$filter ?? "") ?? [];
      const sliceFrom = Date.parse(ge ?? "");
      const sliceTo = Date.parse(le ?? "");
      for (const c of covered) {
        const overlap = Math.min(sliceTo, c.window_to.getTime()) - Math.max(sliceFrom, c.window_from.getTime());
        assert.ok(overlap <= 0, `re-run slice ${ge}..${le} re-reads covered ${c.window_from.toISOString()}`);
      }
    }
    const ids = await storedIds(db, slow.tenantId);
    assert.equal(ids.length, new Set(ids).size, "no duplicates");
    assert.deepEqual(new Set(ids), expectedIds(slow, from, to));
    assert.deepEqual(await gapsToRead(db.pool, slow.tenantId, "interactiveUser", from, to), []);

    // Not a terminal: progress arrives as log lines.
    const lines = second.logs.filter((l) => l.msg === "backfill progress" || l.msg === "backfill finished");
    assert.ok(lines.length >= 2, "progress log lines");
    for (const field of ["slices_done", "slices_total", "events", "events_per_s", "eta_s", "done_pct"]) {
      assert.ok(field in (lines[0] as object), `progress line has ${field}`);
    }
    assert.equal(lines.at(-1)?.done_pct, 100);
    assert.ok(second.logs.some((l) => l.msg === "backfill complete"));
    assert.ok(!second.stderr.includes("\x1b[2K"), "no terminal redraws when not on a terminal");
  } finally {
    await slow.close();
  }
});

test("concurrent slices under Graph's throttle rule stay within the budget and complete", async () => {
  const windowMs = 1000;
  const throttled = await startSimulator({
    seed: 13,
    users: 60,
    signInsPerUserPerDay: 48,
    historyDays: 2,
    pageLatencyMs: 400, // twice the budget interval (1000 ms / 5)
    throttle: { perTenant: 5, perApp: 122, windowMs },
  });
  try {
    const db = await fresh();
    const now = throttled.now().getTime();
    const from = new Date(Math.floor((now - 9 * HOUR) / 1000) * 1000);
    const to = new Date(Math.floor((now - HOUR) / 1000) * 1000);
    // The client's window is a little longer than Graph's, so the time between taking a slot and Graph counting
    // the request (event loop, network) never turns into a 429.
    const b = backfillDeps(throttled, db, {
      PAGE_SIZE: "25",
      GRAPH_BUDGET_PER_TENANT: "5",
      GRAPH_BUDGET_WINDOW: `${windowMs + 80}ms`,
    });
    throttled.resetRequests();
    const started = performance.now();
    const result = await runBackfill(b.deps, INTERACTIVE_STREAM, from, to, {
      log: b.log,
      signal: new AbortController().signal,
      concurrency: 6,
      sliceMs: HOUR,
    });
    const seconds = (performance.now() - started) / 1000;
    const requests = graphRequests(throttled);
    const rejected = requests.filter((r) => r.status === 429).length;

    // The budget paces requests before they are sent, so Graph's rule is rarely hit; a few 429s can slip in when
    // the machine is loaded (the budget counts a request when it leaves, Graph when it arrives). Speed itself is
    // measured by `npm run bench -- --scenario throttled`, not asserted here.
    assert.ok(rejected <= Math.max(3, requests.length * 0.15), `no 429 storm (${rejected} of ${requests.length})`);
    assert.equal(result.throttled, rejected);
    const pages = requests.filter((r) => r.status === 200).length;
    // How many events (and so pages) the 8 hours hold follows the tenant's daily rhythm, so it depends on the hour
    // the test runs at: the page count is checked against the events, not against a fixed number.
    const expected = expectedIds(throttled, from, to);
    assert.ok(expected.size > 200, `enough events to page through (${expected.size})`);
    assert.ok(pages >= Math.ceil(expected.size / 25), `every event came in a page of at most 25 (${pages} pages)`);
    const utilisation = pages / seconds / (5 / (windowMs / 1000));
    console.log(
      `# ${pages} pages in ${seconds.toFixed(1)} s: utilisation ${utilisation.toFixed(2)}, ${rejected} × 429`,
    );
    assert.deepEqual(new Set(await storedIds(db, throttled.tenantId)), expected);
    await b.close();
  } finally {
    await throttled.close();
  }
});
