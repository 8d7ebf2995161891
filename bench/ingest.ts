// Throughput benchmark: how close the ingest path runs to PostgreSQL's COPY rate, and backfill to Graph's budget.
//
//   npm run bench [-- --events 25000] [--database-url postgres://…] [--keep]
//       copy_eps    COPY of the N events into sign_ins (same table, indexes, generated columns and triggers)
//       ingest_eps  the daemon's path in a child process: simulator (pre-rendered pages, no latency) → GraphClient
//                   → readWindow (page upserts, one transaction each) → PostgreSQL; at N and at 4×N, with peak RSS
//       naive_eps   one INSERT … ON CONFLICT statement per event (autocommit), on a sample
//   npm run bench -- --scenario throttled [--time-scale 10]
//       the simulator enforces Graph's rule (5 requests / 10 s per app per tenant) and serves each page in 8 s
//       (4× the budget interval), all time-scaled; budget_utilisation = achieved pages/s ÷ allowed pages/s for a
//       sequential nextLink crawl and for backfill.
//
// Each measurement gets a fresh database cloned from a migrated template on the same server. Prints a table, then
// one JSON line. The measured processes run as the image runs the daemon: its NODE_OPTIONS and a filled compile
// cache (BENCH_NODE_FLAGS and BENCH_COMPILE_CACHE=0 change that); BENCH_DEBUG=1 prints their memory before and at peak.

import { spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import pg from "pg";
import { pino } from "pino";

import { createIngester } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { GraphBudget } from "../src/graph/budget.ts";
import { runBackfill } from "../src/ingest/backfill.ts";
import { emptyCounts, INTERACTIVE_STREAM, readWindow } from "../src/ingest/reader.ts";
import { getToken, graphGet } from "../src/simulator/client.ts";
import { type Simulator, startSimulator } from "../src/simulator/server.ts";
import { createPool } from "../src/store/db.ts";
import { migrate } from "../src/store/migrate.ts";
import { ensurePartitions } from "../src/store/partitions.ts";
import { HOUR, systemClock } from "../src/time.ts";

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
const TENANT_ROWS = "bench-copy";

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
  });
  const pool = createPool(task.databaseUrl, log);
  const budget = new GraphBudget(task.budget ?? { perTenant: 1e9, perApp: 1e9, windowMs: 10_000, reserve: 0 });
  const ingester = createIngester(config, pool, log, { budget });
  const deps = {
    db: pool,
    graph: ingester.graph,
    clock: systemClock,
    tenantId: config.tenants[0]!.tenantId,
    graphEndpoint: config.tenants[0]!.graphEndpoint,
    pageSize: config.pageSize,
    budget,
  };
  const signal = new AbortController().signal;
  await ingester.graph.prepare(signal); // the token is not part of the measurement
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
    // The measured process runs with the heap settings the container uses (Dockerfile NODE_OPTIONS);
    // BENCH_NODE_FLAGS overrides them (e.g. "" for Node's defaults).
    const flags = (process.env.BENCH_NODE_FLAGS ?? PRODUCTION_NODE_FLAGS).split(" ").filter(Boolean);
    const { NODE_COMPILE_CACHE: _, ...env } = process.env;
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
// Databases: a migrated template, cloned per measurement.

class Databases {
  readonly #base: string;
  readonly #names: string[] = [];
  readonly #template = `bench_tpl_${randomBytes(4).toString("hex")}`;
  readonly #keep: boolean;

  constructor(base: string, keep: boolean) {
    this.#base = base;
    this.#keep = keep;
  }

  url(name: string): string {
    const u = new URL(this.#base);
    u.pathname = `/${name}`;
    return u.toString();
  }

  async #admin<T>(work: (c: pg.Client) => Promise<T>): Promise<T> {
    const c = new pg.Client({ connectionString: this.#base });
    await c.connect();
    try {
      return await work(c);
    } finally {
      await c.end();
    }
  }

  async init(): Promise<void> {
    await this.#admin((c) => c.query(`create database ${this.#template}`));
    this.#names.push(this.#template);
    await migrate(this.url(this.#template), pino({ level: "silent" }));
  }

  /** A fresh migrated database; returns its URL. */
  async fresh(label: string): Promise<string> {
    const name = `bench_${label}_${randomBytes(4).toString("hex")}`;
    await this.#admin((c) => c.query(`create database ${name} template ${this.#template}`));
    this.#names.push(name);
    return this.url(name);
  }

  async dropAll(): Promise<void> {
    if (this.#keep) {
      return;
    }
    await this.#admin(async (c) => {
      for (const name of this.#names.reverse()) {
        await c.query(`drop database if exists ${name} with (force)`);
      }
    });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Events: realistic interactive sign-ins from the simulator's generator, cloned with fresh ids and times so that
// any N can be made quickly; served by a simulator that generates nothing else.

async function makeEvents(count: number, spacingMs: number, endMs: number): Promise<Array<Record<string, unknown>>> {
  const source = await startSimulator({
    seed: 5,
    users: 300,
    signInsPerUserPerDay: 24,
    historyDays: 1,
  });
  const base = source
    .visibleEvents()
    .filter((e) => !Array.isArray(e.signInEventTypes) || e.signInEventTypes[0] === "interactiveUser")
    .slice(0, 3000);
  await source.close();
  const events: Array<Record<string, unknown>> = [];
  // Oldest first: the simulator keeps each hour sorted, and appending in order keeps that cheap.
  for (let i = count - 1; i >= 0; i--) {
    const template = base[i % base.length] as Record<string, unknown>;
    const at = new Date(endMs - i * spacingMs).toISOString().replace("Z", "0000Z");
    const id = randomUUID();
    events.push({ ...template, id, originalRequestId: id, correlationId: randomUUID(), createdDateTime: at });
  }
  return events;
}

function windowOf(events: Array<Record<string, unknown>>, newest: number): { from: string; to: string } {
  const last = events.at(-1) as Record<string, unknown>;
  const first = events[events.length - newest] as Record<string, unknown>;
  const floor = (t: unknown) => new Date(Math.floor(Date.parse(String(t)) / 1000) * 1000).toISOString();
  const ceil = (t: unknown) => new Date(Math.ceil(Date.parse(String(t)) / 1000) * 1000).toISOString();
  return { from: floor(first.createdDateTime), to: ceil(last.createdDateTime) };
}

/** Crawls a window once (rendering and caching every page in the simulator); returns the events' JSON texts. */
async function warmUp(sim: Simulator, from: string, to: string, pageSize: number, keep: number): Promise<string[]> {
  const token = await getToken(sim);
  const filter = encodeURIComponent(`createdDateTime ge ${from} and createdDateTime le ${to}`);
  let next: string | undefined = `/v1.0/auditLogs/signIns?$filter=${filter}&$top=${pageSize}`;
  const texts: string[] = [];
  while (next) {
    const r = await graphGet(sim, next, token);
    if (r.status !== 200) {
      throw new Error(`warm-up crawl got ${r.status}: ${r.text.slice(0, 200)}`);
    }
    for (const item of r.json.value as unknown[]) {
      if (texts.length < keep) {
        texts.push(JSON.stringify(item));
      }
    }
    next = r.json["@odata.nextLink"];
  }
  return texts;
}

// ---------------------------------------------------------------------------------------------------------------
// COPY FROM STDIN through node-postgres' submittable interface (no extra dependency).

class CopyIn {
  callback: ((err: Error | null) => void) | undefined;
  readonly #text: string;
  readonly #chunks: Buffer[];
  #error: Error | undefined;
  rowCount = 0;
  readonly done: Promise<number>;
  #settle!: (error: Error | undefined) => void;

  constructor(text: string, chunks: Buffer[]) {
    this.#text = text;
    this.#chunks = chunks;
    this.done = new Promise((resolve, reject) => {
      this.#settle = (error) => (error ? reject(error) : resolve(this.rowCount));
    });
  }
  submit(connection: { query(text: string): void }): void {
    connection.query(this.#text);
  }
  handleCopyInResponse(connection: { sendCopyFromChunk(b: Buffer): void; endCopyFrom(): void }): void {
    for (const chunk of this.#chunks) {
      connection.sendCopyFromChunk(chunk);
    }
    connection.endCopyFrom();
  }
  handleCommandComplete(msg: { text?: string }): void {
    this.rowCount = Number(/(\d+)$/.exec(msg.text ?? "")?.[1] ?? 0);
  }
  handleError(error: Error): void {
    this.#error = error;
  }
  handleReadyForQuery(): void {
    this.callback?.(this.#error ?? null);
    this.#settle(this.#error);
  }
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyData(): void {}
}

async function copyRows(url: string, texts: string[], from: string, to: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await withClientPartitions(client, from, to);
    const started = performance.now();
    const seenAt = new Date().toISOString();
    const chunks: Buffer[] = [];
    let buffer = "";
    for (const text of texts) {
      const { id, createdDateTime } = JSON.parse(text) as { id: string; createdDateTime: string };
      // COPY text format: tab-separated, backslash is the escape character (JSON text has no raw tabs/newlines).
      buffer += `${TENANT_ROWS}\t${id}\t${createdDateTime}\tinteractiveUser\t${text.replaceAll("\\", "\\\\")}\t${seenAt}\t${seenAt}\n`;
      if (buffer.length > 1 << 20) {
        chunks.push(Buffer.from(buffer));
        buffer = "";
      }
    }
    chunks.push(Buffer.from(buffer));
    const copy = new CopyIn(
      "copy sign_ins (tenant_id, id, created_date_time, stream, raw, first_seen_at, last_changed_at) from stdin",
      chunks,
    );
    void client.query(copy as unknown as pg.QueryConfig);
    const rows = await copy.done;
    if (rows !== texts.length) {
      throw new Error(`COPY stored ${rows} rows, expected ${texts.length}`);
    }
    return performance.now() - started;
  } finally {
    await client.end();
  }
}

async function withClientPartitions(client: pg.Client, from: string, to: string): Promise<void> {
  const pool = {
    connect: () => Promise.resolve(Object.assign(client, { release: () => undefined })),
  } as unknown as pg.Pool;
  await ensurePartitions(pool, new Date(from), new Date(to));
}

const NAIVE_UPSERT = `
insert into sign_ins as s (tenant_id, id, created_date_time, stream, raw, first_seen_at, last_changed_at)
values ($1, $2, $3, 'interactiveUser', $4, $5, $5)
on conflict (tenant_id, id, created_date_time) do update
  set raw = excluded.raw, last_changed_at = excluded.last_changed_at, revision = s.revision + 1
  where s.raw is distinct from excluded.raw`;

async function naiveRows(url: string, texts: string[], from: string, to: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await withClientPartitions(client, from, to);
    const started = performance.now();
    const seenAt = new Date();
    for (const text of texts) {
      const event = JSON.parse(text) as { id: string; createdDateTime: string };
      await client.query(NAIVE_UPSERT, [TENANT_ROWS, event.id, event.createdDateTime, text, seenAt]);
    }
    return performance.now() - started;
  } finally {
    await client.end();
  }
}

// ---------------------------------------------------------------------------------------------------------------

function table(rows: Array<Record<string, string | number>>): string {
  const columns = Object.keys(rows[0] ?? {});
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c]).length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i] ?? 0)).join("  ");
  return [
    line(columns),
    line(widths.map((w) => "-".repeat(w))),
    ...rows.map((r) => line(columns.map((c) => String(r[c])))),
  ].join("\n");
}

const round = (n: number, digits = 0) => Number(n.toFixed(digits));

async function ingestScenario(dbs: Databases, n: number): Promise<void> {
  const pageSize = 999;
  const now = Date.now();
  const events = await makeEvents(4 * n, 1000, now - HOUR);
  const sim = await startSimulator({ generate: false, cacheEvents: 10 * n, seed: 9 });
  try {
    sim.addEvents(events, { visibleAt: new Date(now - HOUR) });
    events.length = 0;
    const small = windowOf(sim.visibleEvents().reverse(), n);
    const large = windowOf(sim.visibleEvents().reverse(), 4 * n);
    const texts = await warmUp(sim, large.from, large.to, pageSize, n);
    // The N newest events are exactly the small window's (the crawl runs newest first).
    const simRef = { url: sim.url, tenantId: sim.tenantId, clientId: sim.clientId, clientSecret: sim.clientSecret };

    const copyMs = await copyRows(await dbs.fresh("copy"), texts, small.from, small.to);
    const ingestN = await runChild({
      databaseUrl: await dbs.fresh("ingest"),
      sim: simRef,
      mode: "window",
      ...small,
      pageSize,
    });
    const ingest4N = await runChild({
      databaseUrl: await dbs.fresh("ingest4"),
      sim: simRef,
      mode: "window",
      ...large,
      pageSize,
    });
    const sample = texts.slice(0, Math.min(texts.length, 5000));
    const naiveMs = await naiveRows(await dbs.fresh("naive"), sample, small.from, small.to);
    if (ingestN.events !== n || ingest4N.events !== 4 * n) {
      throw new Error(`the windows held ${ingestN.events} and ${ingest4N.events} events, not ${n} and ${4 * n}`);
    }

    const copyEps = (n * 1000) / copyMs;
    const ingestEps = (ingestN.events * 1000) / ingestN.ms;
    const ingest4Eps = (ingest4N.events * 1000) / ingest4N.ms;
    const naiveEps = (sample.length * 1000) / naiveMs;
    process.stdout.write(
      table([
        {
          path: "COPY into sign_ins",
          events: n,
          seconds: round(copyMs / 1000, 2),
          events_per_s: round(copyEps),
          peak_rss_mb: "-",
        },
        {
          path: "ingest (N)",
          events: ingestN.events,
          seconds: round(ingestN.ms / 1000, 2),
          events_per_s: round(ingestEps),
          peak_rss_mb: round(ingestN.maxRssMb),
        },
        {
          path: "ingest (4N)",
          events: ingest4N.events,
          seconds: round(ingest4N.ms / 1000, 2),
          events_per_s: round(ingest4Eps),
          peak_rss_mb: round(ingest4N.maxRssMb),
        },
        {
          path: "naive upsert per event",
          events: sample.length,
          seconds: round(naiveMs / 1000, 2),
          events_per_s: round(naiveEps),
          peak_rss_mb: "-",
        },
      ]) + "\n\n",
    );
    const summary = {
      scenario: "ingest",
      events: n,
      page_size: pageSize,
      copy_eps: round(copyEps),
      ingest_eps: round(ingestEps),
      ingest_eps_4n: round(ingest4Eps),
      naive_eps: round(naiveEps),
      ratio: round(ingestEps / copyEps, 3),
      ingest_vs_naive: round(ingestEps / naiveEps, 1),
      peak_rss_mb: round(ingestN.maxRssMb, 1),
      peak_rss_mb_4n: round(ingest4N.maxRssMb, 1),
      rss_growth: round(ingest4N.maxRssMb / ingestN.maxRssMb - 1, 3),
    };
    process.stdout.write(JSON.stringify(summary) + "\n");
  } finally {
    await sim.close();
  }
}

async function throttledScenario(dbs: Databases, timeScale: number): Promise<void> {
  const rule = { perTenant: 5, perApp: 122, windowMs: 10_000 };
  const pageLatencyMs = 4 * (rule.windowMs / rule.perTenant); // 8 s a page: four budget intervals
  const pageSize = 100;
  const sequentialPages = 20;
  const backfillPages = 300;
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
        `(allowed ${allowed} pages/s scaled)\n\n`,
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
        },
        {
          reader: "backfill (8 slices at once)",
          pages: bf.pages,
          events: bf.events,
          seconds: round(bf.ms / 1000, 1),
          pages_per_s: round(bfRate, 2),
          utilisation: round(bfRate / allowed, 3),
          http_429: bf429,
        },
      ]) + "\n\n",
    );
    const summary = {
      scenario: "throttled",
      time_scale: timeScale,
      page_latency_s: pageLatencyMs / 1000,
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

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      child: { type: "string" },
      "warm-up": { type: "boolean", default: false },
      scenario: { type: "string", default: "ingest" },
      events: { type: "string", default: "25000" },
      "time-scale": { type: "string", default: "10" },
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
  const dbs = new Databases(values["database-url"], values.keep);
  await dbs.init();
  await spawnSelf(["--warm-up"]); // fills the compile cache before anything is measured, as building the image does
  try {
    if (values.scenario === "throttled") {
      await throttledScenario(dbs, Number(values["time-scale"]));
    } else {
      await ingestScenario(dbs, Number(values.events));
    }
  } finally {
    await dbs.dropAll();
  }
}

await main();
