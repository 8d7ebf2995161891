// Where a page's write time goes: the daemon's page statement (UPSERT_SIGN_INS, one page of real-sized sign-ins)
// under EXPLAIN (ANALYZE, BUFFERS, WAL), in a fresh database: the statement itself (generated columns, heap, TOAST,
// indexes) and each statement trigger (child rows, rollups, travel candidates), page after page, with the backend's
// CPU for the page (from /proc: the server must run on this machine; steadier than wall time on a busy one).
//
//   node bench/write-path.ts [--pages 5] [--page-size 999] [--setup "SQL run first"] [--work-mem 4MB]
//                            [--database-url postgres://…]
// --work-mem sets the page transaction's work_mem instead of the daemon's PAGE_WORK_MEM (to compare); temp_mb is
// what the page statement wrote to temporary files (pg_stat_database.temp_bytes).

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

import { DAY, HOUR } from "../src/time.ts";
import { PAGE_WORK_MEM, UPSERT_SIGN_INS } from "../src/store/signins.ts";
import { Databases, ensureClientPartitions, withClient } from "./databases.ts";
import { cloneEvents, templateEvents } from "./events.ts";
import { median, round, table } from "./report.ts";

interface PlanNode {
  "Actual Total Time"?: number;
  Plans?: PlanNode[];
}
interface Explained {
  Plan: PlanNode & { "WAL Bytes"?: number };
  Triggers?: Array<{ "Trigger Name": string; Time: number; Calls: number }>;
  "Execution Time": number;
}

/** The PostgreSQL backend's CPU so far (user + system, /proc/<pid>/stat; the server must be on this machine). */
function backendCpuMs(pid: number): () => number {
  return () => {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
      return (Number(fields[11]) + Number(fields[12])) * 10;
    } catch {
      return Number.NaN;
    }
  };
}

const { values } = parseArgs({
  options: {
    pages: { type: "string", default: "5" },
    "page-size": { type: "string", default: "999" },
    setup: { type: "string" },
    "work-mem": { type: "string" },
    "database-url": {
      type: "string",
      default:
        process.env.BENCH_DATABASE_URL ?? process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres",
    },
  },
});
const pages = Number(values.pages);
const pageSize = Number(values["page-size"]);
const dbs = new Databases(values["database-url"], false);
await dbs.init();
try {
  const now = Date.now();
  const events = cloneEvents(await templateEvents(false), pages * pageSize, {
    spacingMs: (2 * DAY) / (pages * pageSize),
    endMs: now - HOUR,
    newest: pages * pageSize,
    gapMs: 0,
  });
  const url = await dbs.fresh("explain");
  const rows: Array<Record<string, string | number>> = [];
  await withClient(url, async (c) => {
    const { rows: backend } = await c.query<{ pid: number }>("select pg_backend_pid() as pid");
    const cpuMs = backendCpuMs(backend[0]?.pid ?? 0);
    const tempBytes = async () => {
      await c.query("select pg_stat_force_next_flush()");
      const { rows: t } = await c.query<{ b: string }>(
        "select temp_bytes as b from pg_stat_database where datname = current_database()",
      );
      return Number(t[0]?.b);
    };
    await ensureClientPartitions(c, new Date(now - 3 * DAY), new Date(now));
    if (values.setup) {
      await c.query(values.setup);
    }
    for (let p = 0; p < pages; p++) {
      const page = JSON.stringify({ value: events.slice(p * pageSize, (p + 1) * pageSize) });
      const cpuBefore = cpuMs();
      const tempBefore = await tempBytes();
      // As the daemon writes a page: in a transaction that raises work_mem (PAGE_WORK_MEM).
      await c.query("begin");
      if (values["work-mem"]) {
        await c.query("select set_config('work_mem', $1, true)", [values["work-mem"]]);
      } else {
        await c.query(PAGE_WORK_MEM);
      }
      const { rows: plan } = await c.query<{ "QUERY PLAN": Explained[] }>(
        `explain (analyze, buffers, wal, format json) ${UPSERT_SIGN_INS}`,
        ["bench", "interactiveUser", new Date(), page, [], "beta"],
      );
      await c.query("commit");
      const e = plan[0]?.["QUERY PLAN"][0] as Explained;
      const cpu = cpuMs() - cpuBefore;
      const tempMb = ((await tempBytes()) - tempBefore) / 1048576;
      const triggers = e.Triggers ?? [];
      const triggerMs = triggers.reduce((a, t) => a + t.Time, 0);
      rows.push({
        page: p + 1,
        total_ms: round(e["Execution Time"]),
        server_cpu_ms: round(cpu),
        statement_ms: round(e["Execution Time"] - triggerMs),
        ...Object.fromEntries(triggers.map((t) => [t["Trigger Name"].replace(/^sign_ins_/, ""), round(t.Time)])),
        wal_mb: round((e.Plan["WAL Bytes"] ?? 0) / 1048576, 1),
        temp_mb: round(tempMb, 1),
      });
    }
  });
  process.stdout.write(
    `${pageSize} real-sized sign-ins per page (${round(Buffer.byteLength(JSON.stringify(events[0])))} bytes each), ms per page:\n\n` +
      table(rows) +
      `\nmedian total_ms ${median(rows.map((r) => Number(r.total_ms)))}, ` +
      `median server_cpu_ms ${median(rows.map((r) => Number(r.server_cpu_ms)))} (10 ms ticks, EXPLAIN's own cost included)\n`,
  );
} finally {
  await dbs.dropAll();
}
