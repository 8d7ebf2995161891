// `backfill`: a past range of one (tenant, stream) in concurrent slices, with its own budget (leaving `--reserve`
// slots to a daemon) and its own lock, never the tail's. Reader wiring comes from the ingester (the daemon's:
// PAGE_SIZE, MAX_PAGES_PER_WINDOW).

import { createIngester } from "../app.ts";
import { EXIT, type ExitCode, LockedElsewhereError } from "../errors.ts";
import { GraphBudget } from "../graph/budget.ts";
import { runBackfill } from "../ingest/backfill.ts";
import { createProgressDisplay } from "../ingest/progress.ts";
import { isStreamName, streamSpec } from "../events/streams.ts";
import { withQueryAbort } from "../store/db.ts";
import { parseDuration } from "../time.ts";
import { parseTime, parseWholeNumber, usageLine } from "./args.ts";
import { leasesFor } from "./leases.ts";
import type { CommandContext, DatabaseCommand } from "./types.ts";

const BACKFILL_HELP = `Usage: node src/cli.ts backfill --from <time> [--to <time>] [--tenant ID] [--stream NAME] [--concurrency N] [--slice 1h] [--reserve N]

Reads [from, to] of one tenant's stream (default: the first configured tenant and its first stream) into the
database as time slices, several at a time, within the Graph throttle budget (GRAPH_BUDGET_*), and records each
slice in the coverage ledger. A re-run (after a crash, a signal or a failure) reads only what the ledger does not
cover yet. Does not move the checkpoint and does not take the tail's lock, so it runs beside 'run'. A slice whose
crawl needs more than MAX_PAGES_PER_WINDOW pages is split, as in the daemon.

  --from          ISO time (2026-11-01T00:00:00Z, 2026-11-01) or age (30d, 12h); clamped to GRAPH_RETENTION
  --to            ISO time or age; default now − SETTLE
  --concurrency   most slices at once, 1..64 (default 6; fewer while Graph answers 429)
  --slice         length of the first slices (default 1h; later ones follow the event density)
  --reserve       budget slots per window left to a daemon polling the same tenant (default 1; 0 when none runs)

Progress: one line redrawn on stderr on a terminal (or with PROGRESS=on), log lines otherwise. Exit codes as for
'once'; 64 for a bad option.`;

const BACKFILL_OPTIONS = {
  from: { type: "string" },
  to: { type: "string" },
  concurrency: { type: "string" },
  slice: { type: "string" },
  reserve: { type: "string" },
  tenant: { type: "string" },
  stream: { type: "string" },
} as const;

type BackfillValues = Partial<Record<keyof typeof BACKFILL_OPTIONS, string>>;

async function backfill(ctx: CommandContext): Promise<ExitCode> {
  const { config, database, log, signal } = ctx;
  const o = ctx.args.values as BackfillValues;
  const nowMs = Date.now();
  const now = new Date(nowMs);
  const bad = (problem: string): ExitCode => {
    ctx.err.write(`${usageLine(`backfill: ${problem}`, "backfill", BACKFILL_HELP)}\n`);
    return EXIT.usage;
  };
  if (o.from === undefined) {
    return bad("--from is required");
  }
  const from = parseTime(o.from, now);
  if (from === undefined) {
    return bad(`--from ${o.from} is not an ISO-8601 time (2026-11-01T00:00:00Z) or an age (30d)`);
  }
  const to = o.to === undefined ? new Date(nowMs - config.settleMs) : parseTime(o.to, now);
  if (to === undefined) {
    return bad(`--to ${o.to} is not an ISO-8601 time or an age`);
  }
  if (from >= to) {
    return bad(`--from (${from.toISOString()}) must be before --to (${to.toISOString()})`);
  }
  const sliceMs = parseDuration(o.slice ?? "1h");
  if (!sliceMs) {
    return bad(`--slice ${o.slice ?? ""} is not a duration like 1h or 30m`);
  }
  const concurrency = parseWholeNumber(o.concurrency ?? "6", 1, 64);
  if (concurrency === undefined) {
    return bad(`--concurrency ${o.concurrency ?? ""} must be a whole number in 1..64`);
  }
  const reserve = parseWholeNumber(
    o.reserve ?? (config.budgetPerTenant > 1 ? "1" : "0"),
    0,
    config.budgetPerTenant - 1,
  );
  if (reserve === undefined) {
    return bad(
      `--reserve ${o.reserve ?? ""} must be a whole number below GRAPH_BUDGET_PER_TENANT (${config.budgetPerTenant})`,
    );
  }
  const tenant =
    o.tenant === undefined
      ? config.tenants[0]
      : config.tenants.find((t) => t.tenantId === o.tenant || t.name === o.tenant);
  if (!tenant) {
    return bad(
      `--tenant ${o.tenant ?? ""} is not a configured tenant (${config.tenants.map((t) => t.tenantId).join(", ")})`,
    );
  }
  const streamName = o.stream ?? tenant.streams[0] ?? "";
  if (!isStreamName(streamName)) {
    return bad(`--stream ${streamName} is not a stream`);
  }
  const stream = streamSpec(streamName, tenant.interactiveApiVersion);
  const horizon = nowMs - config.retentionMs + 60_000;
  if (from.getTime() < horizon) {
    log.warn(
      { from, retention_starts: new Date(horizon) },
      "--from lies beyond GRAPH_RETENTION; starting where Graph still has data",
    );
    from.setTime(horizon);
  }
  const leases = leasesFor(config, database, log, "backfill");
  const budget = new GraphBudget({
    perTenant: config.budgetPerTenant,
    perApp: config.budgetPerApp,
    windowMs: config.budgetWindowMs,
    reserve,
  });
  const ingester = createIngester(config, database.pool, log, { budget });
  try {
    if (!(await leases.tryAcquire(tenant.tenantId, `${stream.name}/backfill`))) {
      throw new LockedElsewhereError("another backfill of this tenant and stream is running");
    }
    const display = createProgressDisplay({ log, terminal: ctx.progress });
    // Stops (its queries too) on a signal, or when the backfill's lease is lost.
    const lease = leases.signal(tenant.tenantId, `${stream.name}/backfill`);
    const stop = lease ? AbortSignal.any([signal, lease]) : signal;
    const result = await withQueryAbort(stop, () =>
      runBackfill({ ...ingester.readerDepsFor(tenant.tenantId), budget }, stream, from, to, {
        log,
        signal: stop,
        concurrency,
        sliceMs,
        onProgress: (p) => (p.finished ? display.finish(p) : display.update(p)),
      }),
    );
    log.info(result, "backfill complete");
    return EXIT.ok;
  } finally {
    await ingester.close();
    await leases.close();
  }
}

export const BACKFILL_COMMAND: DatabaseCommand = {
  name: "backfill",
  summary: "read a past range (e.g. --from 30d) in concurrent time slices within the throttle budget; resumable",
  help: BACKFILL_HELP,
  needs: { database: true, tenants: "required", network: true, databaseWait: "brief" },
  output: "logs",
  options: BACKFILL_OPTIONS,
  positionals: false,
  run: backfill,
};
