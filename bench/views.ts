// Benchmark of the documented views (docs/performance-views.md): loads simulator sign-ins through the real upsert
// path (upsertSignIns, pages of 1000, one transaction each) into a fresh database, measures what the child-row
// triggers cost per page, runs VACUUM ANALYZE, then times every view for the last 24 h and the last 30 days.
//
//   node bench/views.ts [--events 1000000] [--users 5000] [--per-user-per-day 1.75] [--runs 3] [--keep]
//                       [--concurrency 1] [--database-url postgres://postgres@127.0.0.1:5432/postgres]
//                       [--reuse signin_bench_…] [--only <regex>] [--no-write-path]
//
// --only times just the views whose name matches; --no-write-path skips the trigger-cost and jsonb measurements.
//
// --concurrency N loads with N pages in flight on N connections (as backfill slices and several streams do).
//
// --reuse names a database a previous run kept (--keep): it is migrated to the latest schema (e.g. to time new
// rollups on the same data) and measured without loading sign-ins; it is always kept. Directory audits (for the
// sign-ins' hours) and the watchlist entries are added when the database has none.
//
// Events are generated backwards from the current hour at the density of --users (5,000 users ≈ 10 M sign-ins a
// year), so the 24 h and 30 d windows hold as many rows as they would in a full year; a smaller --events only
// shortens the history (fewer, pruned partitions). Prints a table, then one JSON line.

import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";

import pg from "pg";
import { pino } from "pino";

import type { ValidEvent } from "../src/events/classify.ts";
import { generateAuditHour } from "../src/simulator/audits.ts";
import { type GenConfig, generateHour, HOUR_MS } from "../src/simulator/generate.ts";
import { withTransaction } from "../src/store/db.ts";
import { migrate } from "../src/store/migrate.ts";
import { ensurePartitions } from "../src/store/partitions.ts";
import { upsertDirectoryAudits, upsertSignIns } from "../src/store/signins.ts";
import { median } from "./report.ts";

const { values: args } = parseArgs({
  options: {
    events: { type: "string", default: "1000000" },
    users: { type: "string", default: "5000" },
    "per-user-per-day": { type: "string", default: "1.75" },
    runs: { type: "string", default: "3" },
    concurrency: { type: "string", default: "1" },
    keep: { type: "boolean", default: false },
    reuse: { type: "string" },
    only: { type: "string" },
    "no-write-path": { type: "boolean", default: false },
    "database-url": {
      type: "string",
      default:
        process.env.BENCH_DATABASE_URL ?? process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres",
    },
  },
});

const TARGET = Number(args.events);
const RUNS = Number(args.runs);
const CONCURRENCY = Math.max(1, Number(args.concurrency));
const TENANT = "bench-tenant-0001";
const PAGE = 1000;

/** Each view with the column a caller filters on (null: a small view read whole). */
export const VIEWS: ReadonlyArray<readonly [string, string | null]> = [
  ["v_sign_in_volume_hourly", "hour"],
  ["v_sign_ins_by_location_hourly", "hour"],
  ["v_failed_sign_ins_hourly", "hour"],
  ["v_failed_sign_ins_daily", "day"],
  ["v_legacy_auth_daily", "day"],
  ["v_ca_policy_outcomes_daily", "day"],
  ["v_mfa_outcomes_daily", "day"],
  ["v_risky_sign_ins", "created_date_time"],
  ["v_password_spray_candidates", "hour"],
  ["v_impossible_travel_candidates", "created_date_time"],
  ["v_first_time_countries", "first_seen_at"],
  ["v_service_principal_activity_daily", "day"],
  ["v_data_freshness", null],
  // Migration 0022 (SOC views); the functions take the window as their range ($from).
  ["v_mfa_denials", "ten_minutes"],
  ["v_new_country_attempts", "created_date_time"],
  ["v_device_code_sign_ins", "created_date_time"],
  ["v_disabled_locked_sign_ins", "created_date_time"],
  ["v_success_after_failures", "created_date_time"],
  ["signin_password_spray($from, now())", "$from"],
  ["signin_distributed_spray($from, now())", "$from"],
  // Migration 0023 (directory-audit views; the bench stores the simulator's audits for the same hours).
  ["v_role_assignments", "activity_date_time"],
  ["v_consent_grants", "activity_date_time"],
  ["v_app_credential_changes", "activity_date_time"],
  ["v_ca_policy_changes", "activity_date_time"],
  ["v_security_info_changes", "activity_date_time"],
  ["v_guest_invitations", "activity_date_time"],
  // Migration 0024 (watchlist and the detections that need it; the bench watches 20 users, 1 break-glass account
  // and a network).
  ["v_privileged_users", null],
  ["v_distributed_password_cracking", "day"],
  ["v_success_then_failure_other_ip", "created_date_time"],
  ["v_privileged_sign_ins_without_ca", "created_date_time"],
  ["v_privileged_new_asn", "created_date_time"],
  ["v_service_principal_new_country", "created_date_time"],
  ["v_privileged_security_info_changes", "activity_date_time"],
  ["v_break_glass_sign_ins", "created_date_time"],
];

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

const round = (x: number, d = 1): number => Math.round(x * 10 ** d) / 10 ** d;

async function main(): Promise<void> {
  const name = args.reuse ?? `signin_bench_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: args["database-url"] });
  await admin.connect();
  if (!args.reuse) {
    await admin.query(`create database ${name}`);
  }
  const url = withDatabase(args["database-url"], name);
  const m0 = performance.now();
  await migrate(url, pino({ level: "silent" }));
  const migrateMs = performance.now() - m0;
  const pool = new pg.Pool({ connectionString: url, max: Math.max(2, CONCURRENCY) });
  try {
    const server = (await pool.query<{ v: string }>("select current_setting('server_version') as v")).rows[0]?.v;
    console.log(
      args.reuse
        ? `database ${name} on PostgreSQL ${server}; reused (migrated in ${round(migrateMs / 1000)} s)`
        : `database ${name} on PostgreSQL ${server}; loading ${TARGET} events (${args.users} users)`,
    );
    const load = args.reuse ? await existingEvents(pool) : await loadEvents(pool);
    const audits = await ensureAudits(pool);
    await ensureWatchlist(pool);
    const triggers = args["no-write-path"] ? null : await measureTriggerCost(pool);
    const t0 = performance.now();
    await pool.query("vacuum analyze");
    const vacuumMs = performance.now() - t0;
    const size = (
      await pool.query<{ total: string; rows: string }>(
        `select pg_size_pretty(sum(pg_total_relation_size(c.oid))) as total, (select count(*) from sign_ins)::text as rows
         from pg_class c where c.relkind in ('r', 'i', 't') and c.relnamespace = 'public'::regnamespace`,
      )
    ).rows[0];
    const views = await timeViews(pool);
    const unnest = args["no-write-path"] ? null : await timeJsonbAlternative(pool);
    printTable(views);
    const summary = {
      bench: "views",
      database: name,
      server,
      events: load.events,
      days: round(load.days, 1),
      eventsPerDay: Math.round(load.events / load.days),
      rowsInSignIns: Number(size?.rows),
      databaseSize: size?.total,
      loadSeconds: round(load.ms / 1000),
      eventsPerSecond: Math.round(load.events / (load.ms / 1000)),
      pageMsMedian: round(median(load.pageMs)),
      directoryAudits: audits,
      triggerCost: triggers,
      vacuumAnalyzeSeconds: round(vacuumMs / 1000),
      views,
      jsonbUnnestAlternative: unnest,
    };
    console.log(JSON.stringify(summary));
  } finally {
    await pool.end();
    if (!args.keep && !args.reuse) {
      await admin.query(`drop database if exists ${name} with (force)`);
    }
    await admin.end();
  }
}

async function loadEvents(pool: pg.Pool): Promise<{ events: number; days: number; ms: number; pageMs: number[] }> {
  const cfg: GenConfig = {
    seed: 2026,
    users: Number(args.users),
    signInsPerUserPerDay: Number(args["per-user-per-day"]),
    arrivalLatency: false,
    republishRate: 0,
  };
  const endHour = Math.floor(Date.now() / HOUR_MS);
  const buffers = new Map<string, ValidEvent[]>();
  const pageMs: number[] = [];
  let events = 0;
  let hour = endHour;
  let month = "";
  const t0 = performance.now();
  const inFlight = new Set<Promise<void>>();
  const flush = async (stream: string, page: ValidEvent[]): Promise<void> => {
    while (inFlight.size >= CONCURRENCY) {
      await Promise.race(inFlight);
    }
    const p0 = performance.now();
    const done = withTransaction(pool, (c) => upsertSignIns(c, TENANT, stream, page, new Date())).then(() => {
      pageMs.push(performance.now() - p0);
      inFlight.delete(done);
    });
    inFlight.add(done);
  };
  while (events < TARGET) {
    const at = new Date(hour * HOUR_MS);
    const m = at.toISOString().slice(0, 7);
    if (m !== month) {
      await ensurePartitions(pool, at, at);
      month = m;
    }
    for (const ev of generateHour(cfg, TENANT, hour)) {
      if (events >= TARGET) {
        break;
      }
      const types = ev.obj.signInEventTypes;
      const stream = Array.isArray(types) && typeof types[0] === "string" ? types[0] : "interactiveUser";
      const list = buffers.get(stream) ?? [];
      list.push({ id: String(ev.obj.id), createdDateTime: String(ev.obj.createdDateTime), raw: ev.obj });
      events++;
      if (list.length >= PAGE) {
        buffers.delete(stream);
        await flush(stream, list);
      } else {
        buffers.set(stream, list);
      }
    }
    hour--;
    if ((endHour - hour) % 168 === 0) {
      const s = (performance.now() - t0) / 1000;
      console.log(`  ${events} events, ${round((endHour - hour) / 24)} days, ${Math.round(events / s)} events/s`);
    }
  }
  for (const [stream, list] of buffers) {
    await flush(stream, list);
  }
  await Promise.all(inFlight);
  return { events, days: (endHour - hour) / 24, ms: performance.now() - t0, pageMs };
}

/**
 * The simulator's directory audits for every hour the sign-ins cover (seeded like the load), in pages of 1000,
 * unless the database already holds audits. Returns how many the database holds.
 */
async function ensureAudits(pool: pg.Pool): Promise<number> {
  const count = async () =>
    Number((await pool.query<{ n: string }>("select count(*)::text as n from directory_audits")).rows[0]?.n);
  if ((await count()) > 0) {
    return count();
  }
  const { rows } = await pool.query<{ first: Date | null; last: Date | null }>(
    "select min(created_date_time) as first, max(created_date_time) as last from sign_ins",
  );
  const first = rows[0]?.first;
  const last = rows[0]?.last;
  if (!first || !last) {
    return 0;
  }
  const cfg: GenConfig = {
    seed: 2026,
    users: Number(args.users),
    signInsPerUserPerDay: 1,
    arrivalLatency: false,
    republishRate: 0,
  };
  let page: ValidEvent[] = [];
  const flush = async () => {
    if (page.length > 0) {
      const events = page;
      page = [];
      await withTransaction(pool, (c) =>
        upsertDirectoryAudits(c, TENANT, "directoryAudits", events, new Date(), "v1.0"),
      );
    }
  };
  for (let hour = Math.floor(first.getTime() / HOUR_MS); hour <= Math.floor(last.getTime() / HOUR_MS); hour++) {
    for (const e of generateAuditHour(cfg, TENANT, hour)) {
      page.push({ id: String(e.obj.id), createdDateTime: String(e.obj.activityDateTime), raw: e.obj });
      if (page.length >= PAGE) {
        await flush();
      }
    }
  }
  await flush();
  return count();
}

/** 20 privileged users and a break-glass account (the busiest users), and a known network, unless any are set. */
async function ensureWatchlist(pool: pg.Pool): Promise<void> {
  await pool.query(
    `insert into watchlist (tenant_id, kind, value, note)
     select $1, case when n = 1 then 'break_glass' else 'privileged' end, user_principal_name, 'bench'
     from (select user_principal_name, row_number() over (order by count(*) desc, user_principal_name) as n
           from sign_ins where tenant_id = $1 and user_principal_name <> '' and created_date_time >= now() - interval '1 day'
           group by user_principal_name) u
     where n <= 21 and not exists (select 1 from watchlist where tenant_id = $1)`,
    [TENANT],
  );
  await pool.query(
    `insert into watchlist (tenant_id, kind, value, note) values ($1, 'ip', '10.0.0.0/8', 'bench') on conflict do nothing`,
    [TENANT],
  );
}

/** What a reused database holds (its load was timed by the run that created it). */
async function existingEvents(pool: pg.Pool): Promise<{ events: number; days: number; ms: number; pageMs: number[] }> {
  const { rows } = await pool.query<{ n: string; days: number }>(
    `select count(*)::text as n,
       extract(epoch from max(created_date_time) - min(created_date_time)) / 86400 as days from sign_ins`,
  );
  return { events: Number(rows[0]?.n), days: Number(rows[0]?.days), ms: NaN, pageMs: [] };
}

/**
 * The insert triggers that keep rollups (0014, 0015), the impossible-travel candidates (0015) and the
 * success-after-failures and new-country candidates (0024).
 */
const ROLLUP_TRIGGERS = [
  "sign_ins_rollups_insert",
  "sign_ins_rollups_mfa_insert",
  "sign_ins_travel_insert",
  "sign_ins_attempt_candidates_insert",
];
/** The trigger of migration 0024's candidate tables, also measured alone. */
const CANDIDATE_TRIGGER: string = "sign_ins_attempt_candidates_insert";
/** Migration 0027's partial index on sign_ins (dropped inside the rolled-back transaction to measure its cost). */
const FAILURE_INDEX = "sign_ins_failure_other_ip_idx";

/**
 * Upserts the same fresh pages with every trigger enabled, without the candidate trigger (0024) alone, without 0027's
 * partial index alone, without the rollup triggers, and without any child-row or rollup trigger (alternating, each
 * rolled back): the differences are what candidates, the index, rollups and child rows cost a page of 1000.
 */
async function measureTriggerCost(pool: pg.Pool): Promise<{
  withMs: number;
  withoutCandidatesMs: number;
  withoutFailureIndexMs: number | null;
  withoutRollupsMs: number;
  withoutMs: number;
  pages: number;
}> {
  const cfg: GenConfig = {
    seed: 99,
    users: Number(args.users),
    signInsPerUserPerDay: 1.75,
    arrivalLatency: false,
    republishRate: 0,
  };
  const events: ValidEvent[] = [];
  // Hours of the previous day, until five pages of user sign-ins are collected.
  for (let hour = Math.floor(Date.now() / HOUR_MS) - 24; events.length < 5 * PAGE; hour--) {
    for (const e of generateHour(cfg, "bench-trigger", hour)) {
      const type = (e.obj.signInEventTypes as string[])[0];
      if (type === "interactiveUser" || type === "nonInteractiveUser") {
        events.push({ id: String(e.obj.id), createdDateTime: String(e.obj.createdDateTime), raw: e.obj });
      }
    }
  }
  const pages: ValidEvent[][] = [];
  for (let i = 0; i + PAGE <= events.length && pages.length < 5; i += PAGE) {
    pages.push(events.slice(i, i + PAGE));
  }
  const on: number[] = [];
  const noCandidates: number[] = [];
  const noIndex: number[] = [];
  const noRollups: number[] = [];
  const hasIndex = (await pool.query("select 1 from pg_class where relname = $1", [FAILURE_INDEX])).rowCount === 1;
  const off: number[] = [];
  for (let round = 0; round < 3; round++) {
    for (const [disabled, times] of [
      [[], on],
      [[CANDIDATE_TRIGGER], noCandidates],
      ...(hasIndex ? [[[FAILURE_INDEX], noIndex] as const] : []),
      [ROLLUP_TRIGGERS, noRollups],
      [[...ROLLUP_TRIGGERS, "sign_ins_children_insert"], off],
    ] as const) {
      for (const page of pages) {
        const client = await pool.connect();
        try {
          await client.query("begin");
          for (const name of disabled) {
            await client.query(
              name === FAILURE_INDEX ? `drop index ${name}` : `alter table sign_ins disable trigger ${name}`,
            );
          }
          const t0 = performance.now();
          await upsertSignIns(client, "bench-trigger", "interactiveUser", page, new Date());
          times.push(performance.now() - t0);
        } finally {
          await client.query("rollback");
          client.release();
        }
      }
    }
  }
  return {
    withMs: round(median(on)),
    withoutCandidatesMs: round(median(noCandidates)),
    withoutFailureIndexMs: hasIndex ? round(median(noIndex)) : null,
    withoutRollupsMs: round(median(noRollups)),
    withoutMs: round(median(off)),
    pages: pages.length,
  };
}

interface ViewTiming {
  view: string;
  window: string;
  rows: number;
  ms: number;
  executionMs: number;
  seqScans: string[];
}

function seqScans(plan: unknown, out: string[] = []): string[] {
  if (plan && typeof plan === "object") {
    const node = plan as Record<string, unknown>;
    if (node["Node Type"] === "Seq Scan" && typeof node["Relation Name"] === "string") {
      out.push(node["Relation Name"]);
    }
    for (const value of Object.values(node)) {
      if (Array.isArray(value)) {
        value.forEach((v) => seqScans(v, out));
      } else if (value && typeof value === "object") {
        seqScans(value, out);
      }
    }
  }
  return out;
}

async function timeViews(pool: pg.Pool): Promise<ViewTiming[]> {
  const out: ViewTiming[] = [];
  const only = args.only ? new RegExp(args.only) : null;
  for (const [view, column] of VIEWS.filter(([v]) => !only || only.test(v))) {
    for (const window of column ? ["24 hours", "30 days"] : ["all"]) {
      const from = `now() - interval '${window}'`;
      const sql =
        column === "$from"
          ? `select * from ${view.replace("$from", from)}`
          : column
            ? `select * from ${view} where ${column} >= ${from}`
            : `select * from ${view}`;
      const times: number[] = [];
      let rows = 0;
      for (let i = 0; i < RUNS + 1; i++) {
        const t0 = performance.now();
        const result = await pool.query(sql);
        if (i > 0) {
          times.push(performance.now() - t0); // the first run warms the cache
        }
        rows = result.rowCount ?? 0;
      }
      const explain = await pool.query<{ "QUERY PLAN": Array<{ "Execution Time": number; Plan: unknown }> }>(
        `explain (analyze, format json) ${sql}`,
      );
      const plan = explain.rows[0]?.["QUERY PLAN"][0];
      out.push({
        view,
        window,
        rows,
        ms: round(median(times)),
        executionMs: round(plan?.["Execution Time"] ?? NaN),
        seqScans: [...new Set(seqScans(plan?.Plan))].filter((r) => r.startsWith("sign_in")),
      });
    }
  }
  return out;
}

/** The rejected alternative: Conditional Access outcomes unnested from raw at query time instead of child rows. */
async function timeJsonbAlternative(pool: pg.Pool): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const window of ["24 hours", "30 days"]) {
    const sql = `select tenant_id, signin_day(created_date_time) as day, p ->> 'id' as policy_id, p ->> 'result' as result, count(*)
      from sign_ins cross join lateral jsonb_array_elements(signin_array(raw -> 'appliedConditionalAccessPolicies')) p
      where created_date_time >= now() - interval '${window}' group by 1, 2, 3, 4`;
    const times: number[] = [];
    for (let i = 0; i < 2; i++) {
      const t0 = performance.now();
      await pool.query(sql);
      times.push(performance.now() - t0);
    }
    out[window] = round(Math.min(...times));
  }
  return out;
}

function printTable(rows: ViewTiming[]): void {
  const header = ["view", "window", "rows", "median ms", "exec ms", "seq scans"];
  const lines = rows.map((r) => [
    r.view,
    r.window,
    String(r.rows),
    String(r.ms),
    String(r.executionMs),
    r.seqScans.join(" ") || "-",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? "").length)));
  const fmt = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join("  ");
  console.log(fmt(header));
  for (const l of lines) {
    console.log(fmt(l));
  }
}

await main();
