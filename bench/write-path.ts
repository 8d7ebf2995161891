// Where a page's write time goes: the daemon's page statement (UPSERT_SIGN_INS, one page of real-sized sign-ins)
// under EXPLAIN (ANALYZE, BUFFERS, WAL), in a fresh database: the statement itself (generated columns, heap, TOAST,
// indexes) and each statement trigger (child rows, rollups, travel candidates), page after page.
//
//   node bench/write-path.ts [--pages 5] [--page-size 999] [--setup "SQL run first"] [--database-url postgres://…]

import { parseArgs } from "node:util";

import { DAY, HOUR } from "../src/time.ts";
import { UPSERT_SIGN_INS } from "../src/store/signins.ts";
import { Databases, ensureClientPartitions, withClient } from "./databases.ts";
import { cloneEvents, templateEvents } from "./events.ts";
import { round, table } from "./report.ts";

interface PlanNode {
  "Actual Total Time"?: number;
  Plans?: PlanNode[];
}
interface Explained {
  Plan: PlanNode & { "WAL Bytes"?: number };
  Triggers?: Array<{ "Trigger Name": string; Time: number; Calls: number }>;
  "Execution Time": number;
}

const { values } = parseArgs({
  options: {
    pages: { type: "string", default: "5" },
    "page-size": { type: "string", default: "999" },
    setup: { type: "string" },
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
    await ensureClientPartitions(c, new Date(now - 3 * DAY), new Date(now));
    if (values.setup) {
      await c.query(values.setup);
    }
    for (let p = 0; p < pages; p++) {
      const page = JSON.stringify({ value: events.slice(p * pageSize, (p + 1) * pageSize) });
      const { rows: plan } = await c.query<{ "QUERY PLAN": Explained[] }>(
        `explain (analyze, buffers, wal, format json) ${UPSERT_SIGN_INS}`,
        ["bench", "interactiveUser", new Date(), page, [], "beta"],
      );
      const e = plan[0]?.["QUERY PLAN"][0] as Explained;
      const triggers = e.Triggers ?? [];
      const triggerMs = triggers.reduce((a, t) => a + t.Time, 0);
      rows.push({
        page: p + 1,
        total_ms: round(e["Execution Time"]),
        statement_ms: round(e["Execution Time"] - triggerMs),
        ...Object.fromEntries(triggers.map((t) => [t["Trigger Name"].replace(/^sign_ins_/, ""), round(t.Time)])),
        wal_mb: round((e.Plan["WAL Bytes"] ?? 0) / 1048576, 1),
      });
    }
  });
  process.stdout.write(
    `${pageSize} real-sized sign-ins per page (${round(Buffer.byteLength(JSON.stringify(events[0])))} bytes each), ms per page:\n\n` +
      table(rows) +
      "\n",
  );
} finally {
  await dbs.dropAll();
}
