// Ingest benchmarks (docs/benchmarks.md). Prints tables, then one JSON line per scenario; never asserts timings.
//
//   npm run bench [-- --events 10000] [--database-url postgres://…] [--keep]
//       realistic (default): real-sized beta sign-ins (~7.9 KB, 10 CA policies each) at N and 4N: COPY into a bare
//       jsonb table (the limit), COPY into sign_ins, `node src/cli.ts once` catching up (Graph budget lifted) and
//       `node src/cli.ts import` of the same events from a file; events/s, ratio to the bare COPY, bytes on disk per
//       event, peak RSS of each `node src/cli.ts` process, and issue 14's targets (bench/realistic.ts)
//   npm run bench -- --scenario small         the same with ~2.9 KB events (no CA policies, no authenticationDetails)
//   npm run bench -- --scenario tenants [--tenants 4]
//       several tenants: `once` at TENANT_CONCURRENCY 1, 2 and 4, then two replicas on one database (bench/tenants.ts)
//   npm run bench -- --scenario throttled [--time-scale 10] [--page-size 100] [--backfill-pages 300]
//       the simulator enforces Graph's rule (5 requests / 10 s per app per tenant) and serves each page in 8 s
//       (4× the budget interval), all time-scaled; budget_utilisation = achieved pages/s ÷ allowed pages/s for a
//       sequential nextLink crawl and for backfill (in a child process running the reader directly). The events are
//       real-sized; --page-size 999 gives real-sized pages (~8 MB), where PAGE_MEMORY_BYTES (passed to the child)
//       decides how many slices run at once.
//
// Each measurement gets a fresh database cloned from a migrated template on the same server. The throttled
// scenario's child runs with the image's NODE_OPTIONS (PRODUCTION_NODE_FLAGS, kept equal to the Dockerfile's by
// test/docker.test.ts) and a filled compile cache; the other scenarios start `node src/cli.ts` plainly.

import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { pino } from "pino";

import { createIngester } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { GraphBudget } from "../src/graph/budget.ts";
import { runBackfill } from "../src/ingest/backfill.ts";
import { emptyCounts, INTERACTIVE_STREAM, readWindow } from "../src/ingest/reader.ts";
import { startSimulator } from "../src/simulator/server.ts";
import { MMAP_THRESHOLD } from "../src/start-settings.ts";
import { createPool } from "../src/store/db.ts";
import { HOUR } from "../src/time.ts";
import { Databases } from "./databases.ts";
import { type BenchEvent, cloneEvents, templateEvents } from "./events.ts";
import { realisticScenario } from "./realistic.ts";
import { round, table } from "./report.ts";
import { tenantsScenario } from "./tenants.ts";

/** V8 heap settings of the production image (Dockerfile `NODE_OPTIONS`): a small young generation keeps RSS flat. */
const PRODUCTION_NODE_FLAGS = "--max-semi-space-size=4";

/**
 * The production image runs with a compile cache filled when the image is built (Dockerfile `NODE_COMPILE_CACHE`):
 * its TypeScript comes already stripped, so Node never loads its type-stripping compiler (WebAssembly, about 25 MB
 * resident). The measured process gets one filled the same way, before it is measured; BENCH_COMPILE_CACHE=0 runs
 * it without.
 */
const COMPILE_CACHE = fileURLToPath(new URL("../node_modules/.cache/bench-compile-cache", import.meta.url));

const SELF = fileURLToPath(import.meta.url);

interface ChildTask {
  databaseUrl: string;
  sim: { url: string; tenantId: string; clientId: string; clientSecret: string };
  mode: "window" | "backfill";
  from: string;
  to: string;
  pageSize: number;
  concurrency?: number;
  budget?: { perTenant: number; perApp: number; windowMs: number; reserve: number };
}

interface ChildResult {
  events: number;
  pages: number;
  ms: number;
  maxRssMb: number;
  throttled: number;
}

// ---------------------------------------------------------------------------------------------------------------
// Child: one measured run of the real path, reporting its own peak RSS.

async function child(task: ChildTask): Promise<void> {
  const log = pino({ level: "warn" }, pino.destination(2));
  const config = loadConfig({
    DATABASE_URL: task.databaseUrl,
    AZURE_TENANT_ID: task.sim.tenantId,
    AZURE_CLIENT_ID: task.sim.clientId,
    AZURE_CLIENT_SECRET: task.sim.clientSecret,
    AZURE_AUTHORITY_HOST: task.sim.url,
    GRAPH_ENDPOINT: task.sim.url,
    PAGE_SIZE: String(task.pageSize),
    HTTP_TIMEOUT: "60s",
    RETRY_BASE_DELAY: "100ms",
    LOG_LEVEL: "warn",
    ...(process.env.PAGE_MEMORY_BYTES ? { PAGE_MEMORY_BYTES: process.env.PAGE_MEMORY_BYTES } : {}),
  });
  const pool = createPool(task.databaseUrl, log);
  const budget = new GraphBudget(task.budget ?? { perTenant: 1e9, perApp: 1e9, windowMs: 10_000, reserve: 0 });
  const ingester = createIngester(config, pool, log, { budget });
  // As `backfill` does (src/commands/backfill.ts): the ingester's reader wiring and the bench's own budget.
  const deps = { ...ingester.readerDepsFor(config.tenants[0]!.tenantId), budget };
  const signal = new AbortController().signal;
  await deps.graph.prepare(signal); // the token is not part of the measurement
  const window = { from: new Date(task.from), to: new Date(task.to) };
  const peak = { rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 };
  if (process.env.BENCH_DEBUG) {
    process.stderr.write(`before: ${JSON.stringify(megabytes(process.memoryUsage()))}\n`);
  }
  const sampler = setInterval(() => {
    const m = process.memoryUsage();
    for (const k of Object.keys(peak) as Array<keyof typeof peak>) {
      peak[k] = Math.max(peak[k], m[k] / 1048576);
    }
  }, 50);
  const started = performance.now();
  let result: Omit<ChildResult, "ms" | "maxRssMb">;
  if (task.mode === "window") {
    const counts = emptyCounts();
    await readWindow(deps, INTERACTIVE_STREAM, window, { log, signal, reader: "sweep", priority: "tail" }, counts);
    result = { events: counts.fetched, pages: counts.pages, throttled: 0 };
  } else {
    const r = await runBackfill(deps, INTERACTIVE_STREAM, window.from, window.to, {
      log,
      signal,
      ...(task.concurrency ? { concurrency: task.concurrency } : {}),
      sliceMs: HOUR,
    });
    result = { events: r.fetched, pages: r.pages, throttled: r.throttled };
  }
  const ms = performance.now() - started;
  clearInterval(sampler);
  if (process.env.BENCH_DEBUG) {
    process.stderr.write(`peak: ${JSON.stringify(megabytes(peak, 1))}\n`);
  }
  await ingester.close();
  await pool.end();
  const out: ChildResult = { ...result, ms, maxRssMb: process.resourceUsage().maxRSS / 1024 };
  process.stdout.write(JSON.stringify(out) + "\n");
}

const megabytes = (m: object, unit = 1048576) =>
  Object.fromEntries(Object.entries(m).map(([k, v]) => [k, round(Number(v) / unit, 1)]));

/** Runs this file in a child process with `args` (as the container would run the daemon); its last JSON line. */
function spawnSelf(args: string[]): Promise<unknown> {
  return new Promise((resolve, reject) => {
    // The measured process runs with the heap and malloc settings the container uses (Dockerfile NODE_OPTIONS and
    // GLIBC_TUNABLES);
    // BENCH_NODE_FLAGS overrides them (e.g. "" for Node's defaults).
    const flags = (process.env.BENCH_NODE_FLAGS ?? PRODUCTION_NODE_FLAGS).split(" ").filter(Boolean);
    const { NODE_COMPILE_CACHE: _, ...parent } = process.env;
    const env = { ...parent, GLIBC_TUNABLES: MMAP_THRESHOLD };
    const proc = spawn(process.execPath, [...flags, SELF, ...args], {
      stdio: ["ignore", "pipe", "inherit"],
      env:
        process.env.BENCH_COMPILE_CACHE === "0"
          ? { ...env, NODE_DISABLE_COMPILE_CACHE: "1" }
          : { ...env, NODE_COMPILE_CACHE: COMPILE_CACHE },
    });
    let out = "";
    proc.stdout.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
    proc.on("exit", (code) => {
      const line = out.trim().split("\n").at(-1) ?? "";
      if (code === 0 && line.startsWith("{")) {
        resolve(JSON.parse(line));
      } else {
        reject(new Error(`bench child exited with ${code}: ${out}`));
      }
    });
  });
}

async function runChild(task: ChildTask): Promise<ChildResult> {
  if (process.env.BENCH_DEBUG) {
    process.stderr.write(`bench process: ${JSON.stringify(megabytes(process.memoryUsage()))}\n`);
  }
  return (await spawnSelf(["--child", JSON.stringify(task)])) as ChildResult;
}

// ---------------------------------------------------------------------------------------------------------------
// Events for the throttled scenario: cloned realistic sign-ins, served by a simulator that generates nothing else.

async function makeEvents(count: number, spacingMs: number, endMs: number): Promise<BenchEvent[]> {
  return cloneEvents(await templateEvents(false), count, { spacingMs, endMs, newest: count, gapMs: 0 });
}

function windowOf(events: Array<Record<string, unknown>>, newest: number): { from: string; to: string } {
  const last = events.at(-1) as Record<string, unknown>;
  const first = events[events.length - newest] as Record<string, unknown>;
  const floor = (t: unknown) => new Date(Math.floor(Date.parse(String(t)) / 1000) * 1000).toISOString();
  const ceil = (t: unknown) => new Date(Math.ceil(Date.parse(String(t)) / 1000) * 1000).toISOString();
  return { from: floor(first.createdDateTime), to: ceil(last.createdDateTime) };
}

async function throttledScenario(
  dbs: Databases,
  o: { timeScale: number; pageSize: number; backfillPages: number },
): Promise<void> {
  const { timeScale, pageSize, backfillPages } = o;
  const rule = { perTenant: 5, perApp: 122, windowMs: 10_000 };
  const pageLatencyMs = 4 * (rule.windowMs / rule.perTenant); // 8 s a page: four budget intervals
  const sequentialPages = 20;
  const now = Date.now();
  const events = await makeEvents((sequentialPages + backfillPages) * pageSize, 2000, now - HOUR);
  const sim = await startSimulator({ generate: false, seed: 9, throttle: rule, pageLatencyMs, timeScale });
  try {
    sim.addEvents(events, { visibleAt: new Date(now - HOUR) });
    const all = sim.visibleEvents().reverse();
    const sequential = windowOf(all.slice(0, sequentialPages * pageSize), sequentialPages * pageSize);
    const backfill = windowOf(all, backfillPages * pageSize);
    const simRef = { url: sim.url, tenantId: sim.tenantId, clientId: sim.clientId, clientSecret: sim.clientSecret };
    // The client's budget window is 5 % longer than Graph's: the time between taking a slot and Graph counting the
    // request (event loop, network) must not turn into a 429. reserve 0: no tail daemon polls this tenant here.
    const budget = { ...rule, windowMs: (rule.windowMs / timeScale) * 1.05, reserve: 0 };
    const allowed = rule.perTenant / (rule.windowMs / timeScale / 1000);
    const requests429 = () => sim.requests().filter((r) => r.kind === "graph" && r.status === 429).length;

    sim.resetRequests();
    const seq = await runChild({
      databaseUrl: await dbs.fresh("seq"),
      sim: simRef,
      mode: "window",
      ...sequential,
      pageSize,
      budget,
    });
    const seq429 = requests429();
    sim.resetRequests();
    const bf = await runChild({
      databaseUrl: await dbs.fresh("bf"),
      sim: simRef,
      mode: "backfill",
      ...backfill,
      pageSize,
      budget,
      concurrency: 8,
    });
    const bf429 = requests429();

    const seqRate = (seq.pages * 1000) / seq.ms;
    const bfRate = (bf.pages * 1000) / bf.ms;
    process.stdout.write(
      `Graph rule ${rule.perTenant}/${rule.windowMs / 1000}s per tenant, ${pageLatencyMs / 1000}s a page, time scale ${timeScale}× ` +
        `(allowed ${allowed} pages/s scaled), ${pageSize} events a page` +
        (process.env.PAGE_MEMORY_BYTES ? `, PAGE_MEMORY_BYTES ${process.env.PAGE_MEMORY_BYTES}` : "") +
        "\n\n",
    );
    process.stdout.write(
      table([
        {
          reader: "sequential nextLink crawl",
          pages: seq.pages,
          events: seq.events,
          seconds: round(seq.ms / 1000, 1),
          pages_per_s: round(seqRate, 2),
          utilisation: round(seqRate / allowed, 3),
          http_429: seq429,
          peak_rss_mb: round(seq.maxRssMb),
        },
        {
          reader: "backfill (at most 8 slices at once)",
          pages: bf.pages,
          events: bf.events,
          seconds: round(bf.ms / 1000, 1),
          pages_per_s: round(bfRate, 2),
          utilisation: round(bfRate / allowed, 3),
          http_429: bf429,
          peak_rss_mb: round(bf.maxRssMb),
        },
      ]) + "\n\n",
    );
    const summary = {
      scenario: "throttled",
      time_scale: timeScale,
      page_latency_s: pageLatencyMs / 1000,
      page_size: pageSize,
      page_memory_bytes: process.env.PAGE_MEMORY_BYTES ?? "default",
      backfill_peak_rss_mb: bf.maxRssMb,
      allowed_pages_per_s: allowed / timeScale,
      budget_utilisation: { sequential: round(seqRate / allowed, 3), backfill: round(bfRate / allowed, 3) },
      http_429: { sequential: seq429, backfill: bf429 },
      backfill_eps_real_time: round((bf.events * 1000) / bf.ms / timeScale, 1),
    };
    process.stdout.write(JSON.stringify(summary) + "\n");
  } finally {
    await sim.close();
  }
}

const SCENARIOS = ["realistic", "small", "tenants", "throttled"];

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      child: { type: "string" },
      "warm-up": { type: "boolean", default: false },
      scenario: { type: "string", default: "realistic" },
      events: { type: "string", default: "10000" },
      tenants: { type: "string", default: "4" },
      "time-scale": { type: "string", default: "10" },
      "page-size": { type: "string", default: "100" },
      "backfill-pages": { type: "string", default: "300" },
      keep: { type: "boolean", default: false },
      "database-url": {
        type: "string",
        default:
          process.env.BENCH_DATABASE_URL ?? process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres",
      },
    },
  });
  if (values.child) {
    await child(JSON.parse(values.child) as ChildTask);
    return;
  }
  if (values["warm-up"]) {
    process.stdout.write("{}\n"); // the modules are loaded (and their compile cache written at exit)
    return;
  }
  const events = Number(values.events);
  if (!SCENARIOS.includes(values.scenario) || !Number.isInteger(events) || events < 1000) {
    throw new Error(`usage: --scenario ${SCENARIOS.join("|")} --events N (N ≥ 1000)`);
  }
  const dbs = new Databases(values["database-url"], values.keep);
  await dbs.init();
  try {
    if (values.scenario === "throttled") {
      await spawnSelf(["--warm-up"]); // fills the compile cache before anything is measured, as building the image does
      await throttledScenario(dbs, {
        timeScale: Number(values["time-scale"]),
        pageSize: Number(values["page-size"]),
        backfillPages: Number(values["backfill-pages"]),
      });
    } else if (values.scenario === "tenants") {
      await tenantsScenario(dbs, { events, tenants: Number(values.tenants) });
    } else {
      await realisticScenario(dbs, { events, small: values.scenario === "small" });
    }
  } finally {
    await dbs.dropAll();
  }
}

await main();
