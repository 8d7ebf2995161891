// The default benchmark: real-sized sign-ins through every write path, on one server, each in a fresh database:
//   bare COPY     COPY of the events into a bare table (jsonb + primary key + one time index): the physical limit
//   COPY          COPY of the same events into the project's sign_ins (its triggers, indexes, generated columns)
//   once          `node src/cli.ts once` catching up against the simulator (Graph budget lifted): the daemon path
//   import        `node src/cli.ts import` of the same events from a JSON-lines file
// at N and at 4N; events per second, ratio to the bare COPY, bytes on disk per event (whole schema, and the bare
// table), peak RSS of each `node src/cli.ts` process; then the targets of issue 14 against the figures.

import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { startSimulator } from "../src/simulator/server.ts";
import { DAY, HOUR } from "../src/time.ts";
import {
  copyChunks,
  copyInto,
  type Databases,
  ensureClientPartitions,
  schemaBytes,
  type SchemaBytes,
  serverFacts,
  withClient,
} from "./databases.ts";
import { type BenchEvent, cloneEvents, realFixtureShape, shapeOf, templateEvents } from "./events.ts";
import { catchUpEnv, type CliRun, runCli } from "./processes.ts";
import { round, table } from "./report.ts";

const TENANT = "00000000-0000-4000-8000-0000000000be";
/** The N newest events span this; the 3N older ones lie 1 h before them. */
const SPAN_MS = 2 * DAY;
const GAP_MS = HOUR;

const BARE_TABLE = `
create table bare_sign_ins (
  tenant_id text not null,
  id text not null,
  created_date_time timestamptz not null,
  raw jsonb not null,
  primary key (tenant_id, id, created_date_time)
);
create index bare_sign_ins_time_idx on bare_sign_ins (tenant_id, created_date_time);`;

interface Row {
  path: string;
  events: number;
  seconds: number;
  eps: number;
  bytesPerEvent?: number;
  peakRssMb?: number;
  exit?: number | null;
}

export interface RealisticOptions {
  events: number;
  small: boolean;
}

export async function realisticScenario(dbs: Databases, o: RealisticOptions): Promise<void> {
  const n = o.events;
  const facts = await serverFacts(dbs.templateUrl);
  const templates = await templateEvents(o.small);
  const spacingMs = SPAN_MS / n;
  const now = Date.now();
  const endMs = now - HOUR;
  const events = cloneEvents(templates, 4 * n, { spacingMs, endMs, newest: n, gapMs: GAP_MS });
  const shape = shapeOf(events.slice(0, 2000));
  const real = realFixtureShape();
  process.stdout.write(
    `PostgreSQL ${facts.version} (default_toast_compression ${facts.toastCompression}, lz4 ${facts.lz4 ? "available" : "not built in"})\n` +
      `events: ${o.small ? "small" : "realistic"}, mean ${round(shape.meanBytes)} bytes of JSON, ` +
      `${round(shape.meanPolicies, 1)} CA policies each (${round(shape.notEnabledShare * 100)} % notEnabled); ` +
      `real beta fixtures: ${round(real.meanBytes)} bytes, ${round(real.meanPolicies, 1)} policies (${round(real.notEnabledShare * 100)} % notEnabled)\n` +
      `N = ${n} over ${SPAN_MS / DAY} days, 4N = ${4 * n}\n\n`,
  );

  const sim = await startSimulator({ generate: false, tenants: [TENANT], cacheEvents: 4 * n + 1000, seed: 9 });
  const work = await mkdtemp(path.join(tmpdir(), "bench-ingest-"));
  try {
    sim.addEvents(events, { tenantId: TENANT, visibleAt: new Date(now - 2 * HOUR) });
    const newest = events.slice(3 * n);
    const files = { n: path.join(work, "n.jsonl"), n4: path.join(work, "4n.jsonl") };
    await writeFile(files.n, newest.map((e) => JSON.stringify(e)).join("\n") + "\n");
    await writeFile(files.n4, events.map((e) => JSON.stringify(e)).join("\n") + "\n");
    const baseline = await schemaBytes(dbs.templateUrl);
    const env = (url: string, lookbackMs: number): Record<string, string> =>
      catchUpEnv(sim, url, lookbackMs, { AZURE_TENANT_ID: TENANT });
    // The first run of a fresh checkout strips the TypeScript and fills Node's compile cache (module.enableCompileCache
    // in src/cli.ts); every later start, as a user's second, reads it. Not measured.
    await runCli(["migrate"], { DATABASE_URL: dbs.templateUrl, LOG_LEVEL: "warn" }, work);

    // Not measured either: a first COPY warms the server (its caches, the WAL files it recycles).
    await bareCopy(dbs, newest.slice(0, Math.min(n, 2000)), baseline);
    const rows: Row[] = [];
    const bytes: Record<string, SchemaBytes> = {};
    for (const [label, list] of [
      ["N", newest],
      ["4N", events],
    ] as const) {
      const bare = await bareCopy(dbs, list, baseline);
      rows.push({ path: `bare COPY (${label})`, ...bare.row });
      bytes[`bare ${label}`] = bare.bytes;
      if (label === "N") {
        const copy = await projectCopy(dbs, list, baseline);
        rows.push({ path: `COPY into sign_ins (${label})`, ...copy.row });
        bytes[`COPY ${label}`] = copy.bytes;
      }
      const lookbackMs = now - (endMs - (list.length - 1) * spacingMs - (label === "N" ? 0 : GAP_MS)) + GAP_MS / 2;
      const daemon = await cliPath(dbs, ["once"], (url) => env(url, lookbackMs), list.length, baseline, work);
      rows.push({ path: `once (${label})`, ...daemon.row });
      bytes[`once ${label}`] = daemon.bytes;
      const from = new Date(now - lookbackMs).toISOString();
      const to = new Date(now - HOUR / 2).toISOString();
      const backfill = await cliPath(
        dbs,
        ["backfill", "--from", from, "--to", to],
        (url) => env(url, lookbackMs),
        list.length,
        baseline,
        work,
      );
      rows.push({ path: `backfill (${label})`, ...backfill.row });
      // `run` until its first cycle stored everything, then SIGTERM (exit 0).
      const run = await cliPath(dbs, ["run"], (url) => env(url, lookbackMs), list.length, baseline, work, true);
      rows.push({ path: `run (${label})`, ...run.row });
      const file = label === "N" ? files.n : files.n4;
      const imp = await cliPath(
        dbs,
        ["import", "--tenant", TENANT, file],
        (url) => env(url, DAY),
        list.length,
        baseline,
        work,
      );
      rows.push({ path: `import (${label})`, ...imp.row });
      bytes[`import ${label}`] = imp.bytes;
    }
    print(rows, bytes, n);
  } finally {
    await sim.close();
    await rm(work, { recursive: true, force: true });
  }
}

async function bareCopy(dbs: Databases, list: readonly BenchEvent[], baseline: SchemaBytes) {
  const url = await dbs.fresh("bare");
  const ms = await withClient(url, async (c) => {
    await c.query(BARE_TABLE);
    const chunks = [
      ...copyChunks(list.map((e) => [TENANT, String(e.id), String(e.createdDateTime), JSON.stringify(e)])),
    ];
    return copyInto(c, "copy bare_sign_ins (tenant_id, id, created_date_time, raw) from stdin", chunks, list.length);
  });
  const bytes = await schemaBytes(url, baseline);
  await dbs.drop(url);
  return { row: rowOf(list.length, ms, bytes), bytes };
}

async function projectCopy(dbs: Databases, list: readonly BenchEvent[], baseline: SchemaBytes) {
  const url = await dbs.fresh("copy");
  const ms = await withClient(url, async (c) => {
    await ensureClientPartitions(
      c,
      new Date(String(list[0]?.createdDateTime)),
      new Date(String(list.at(-1)?.createdDateTime)),
    );
    const seenAt = new Date().toISOString();
    const chunks = [
      ...copyChunks(
        list.map((e) => [
          TENANT,
          String(e.id),
          String(e.createdDateTime),
          "interactiveUser",
          JSON.stringify(e),
          seenAt,
          seenAt,
          "beta",
        ]),
      ),
    ];
    return copyInto(
      c,
      "copy sign_ins (tenant_id, id, created_date_time, stream, raw, first_seen_at, last_changed_at, api_version) from stdin",
      chunks,
      list.length,
    );
  });
  const bytes = await schemaBytes(url, baseline);
  await dbs.drop(url);
  return { row: rowOf(list.length, ms, bytes), bytes };
}

async function cliPath(
  dbs: Databases,
  args: string[],
  env: (url: string) => Record<string, string>,
  expected: number,
  baseline: SchemaBytes,
  cwd: string,
  untilStored = false,
): Promise<{ row: Omit<Row, "path">; bytes: SchemaBytes; run: CliRun }> {
  const url = await dbs.fresh(args[0] ?? "cli");
  const count = () =>
    withClient(url, async (c) => {
      const { rows } = await c.query<{ n: number }>("select count(*)::int as n from sign_ins");
      return rows[0]?.n ?? 0;
    });
  const run = await runCli(args, env(url), cwd, untilStored ? async () => (await count()) >= expected : undefined);
  const stored = await count();
  if (run.code !== 0 || stored !== expected) {
    throw new Error(`${args.join(" ")} exited ${run.code} and stored ${stored} of ${expected} events: ${run.stderr}`);
  }
  const bytes = await schemaBytes(url, baseline);
  await dbs.drop(url);
  return { row: { ...rowOf(stored, run.ms, bytes), peakRssMb: round(run.peakRssMb), exit: run.code }, bytes, run };
}

function rowOf(events: number, ms: number, bytes: SchemaBytes): Omit<Row, "path"> {
  return {
    events,
    seconds: round(ms / 1000, 2),
    eps: round((events * 1000) / ms),
    bytesPerEvent: round(bytes.total / events),
  };
}

function print(rows: Row[], bytes: Record<string, SchemaBytes>, n: number): void {
  const bareEps = rows.find((r) => r.path === "bare COPY (N)")?.eps ?? NaN;
  const bareBytes = rows.find((r) => r.path === "bare COPY (N)")?.bytesPerEvent ?? NaN;
  process.stdout.write(
    table(
      rows.map((r) => ({
        path: r.path,
        events: r.events,
        seconds: r.seconds,
        events_per_s: r.eps,
        "×bare_COPY": round(r.eps / bareEps, 2),
        bytes_per_event: r.bytesPerEvent ?? "-",
        "×bare_bytes": r.bytesPerEvent === undefined ? "-" : round(r.bytesPerEvent / bareBytes, 2),
        peak_rss_mb: r.peakRssMb ?? "-",
      })),
    ) + "\n\n",
  );
  const once = bytes["once N"];
  if (once) {
    process.stdout.write(
      "bytes per event by relation (once, N):\n" +
        table(
          Object.entries(once.groups)
            .filter(([, v]) => Math.abs(v) >= n)
            .sort((a, b) => b[1] - a[1])
            .map(([k, v]) => ({ relation: k, bytes_per_event: round(v / n) })),
        ) +
        "\n\n",
    );
  }
  const get = (p: string) => rows.find((r) => r.path === p);
  const rss = rows.filter((r) => r.peakRssMb !== undefined).map((r) => r.peakRssMb as number);
  const growth = (name: string) => {
    const a = get(`${name} (N)`)?.peakRssMb;
    const b = get(`${name} (4N)`)?.peakRssMb;
    return a && b ? b / a - 1 : NaN;
  };
  const onceRatio = (get("once (N)")?.eps ?? NaN) / bareEps;
  const onceBytes = (get("once (N)")?.bytesPerEvent ?? NaN) / bareBytes;
  const targets = [
    {
      target: "daemon (once) ≥ 0.8× bare COPY (never < 0.6)",
      figure: round(onceRatio, 2),
      met: verdict(onceRatio >= 0.8, onceRatio >= 0.6),
    },
    {
      target: "bytes/event ≤ 1.0× bare (never > 1.3)",
      figure: round(onceBytes, 2),
      met: verdict(onceBytes <= 1.0, onceBytes <= 1.3),
    },
    {
      target: "peak RSS ≤ 150 MB (every process)",
      figure: Math.max(...rss),
      met: verdict(Math.max(...rss) <= 150, false),
    },
    {
      target: "RSS flat N→4N (≤ +10 %)",
      figure: `once ${round(growth("once") * 100)} %, import ${round(growth("import") * 100)} %`,
      met: verdict(growth("once") <= 0.1 && growth("import") <= 0.1, false),
    },
  ];
  process.stdout.write("targets (issue 14):\n" + table(targets) + "\n\n");
  const summary = {
    scenario: "realistic",
    events: n,
    bare_copy_eps: bareEps,
    bare_bytes_per_event: bareBytes,
    rows: rows.map((r) => ({ ...r })),
    once_ratio: round(onceRatio, 3),
    bytes_ratio: round(onceBytes, 3),
  };
  process.stdout.write(JSON.stringify(summary) + "\n");
}

const verdict = (met: boolean, tolerable: boolean) => (met ? "met" : tolerable ? "within the floor" : "NOT met");
