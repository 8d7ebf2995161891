// `run` (the daemon: schedule, ops listener, partition maintenance) and `once` (one cycle of every target).

import { budgetFor, createIngester, type Database, type Ingester } from "../app.ts";
import type { Config } from "../config.ts";
import { EXIT, type ExitCode, exitCodeFor, listenProblem, LockedElsewhereError } from "../errors.ts";
import { scheduleIntervalMs, startSchedule } from "../ingest/scheduler.ts";
import type { TargetOutcome } from "../ingest/targets.ts";
import type { Logger } from "../log.ts";
import { Metrics } from "../metrics.ts";
import { startOpsServer } from "../ops-server.ts";
import { ReadinessTracker } from "../readiness.ts";
import { readCheckpoints } from "../store/checkpoints.ts";
import { withTransaction } from "../store/db.ts";
import { dropExpiredPartitions, ensureUpcomingPartitions } from "../store/partitions.ts";
import { leasesFor } from "./leases.ts";
import { showCycleProgress } from "./progress.ts";
import type { CommandContext, DatabaseCommand } from "./types.ts";

const RUN_HELP = `Usage: node src/cli.ts run

Applies migrations, runs one cycle at once, then one per POLL_SCHEDULE tick (UTC cron), never two at a time.
SIGTERM, SIGINT or SIGHUP (the terminal closed) stops the schedule, aborts in-flight requests, rolls back an open
transaction, releases the leases, closes the database (and stops the embedded PostgreSQL it started) and exits 0. A second signal exits at once with 130. A cycle that fails is logged and retried on the
next tick; the checkpoint only moves when a window is completely stored. Exit 78 at start when METRICS_PORT is
in use.`;

const ONCE_HELP = `Usage: node src/cli.ts once

Applies migrations, runs one cycle and exits: 0 success, 75 temporary failure (Graph or PostgreSQL unavailable,
throttled past the retry budget, malformed page), 78 configuration, credential, permission or licence problem,
70 unexpected error. On a terminal (or with PROGRESS=on) one line on stderr shows the progress: streams done,
events stored, pages, rate, and waits for the Graph throttle budget.`;

async function once(ctx: CommandContext): Promise<ExitCode> {
  const { config, database, log, signal } = ctx;
  const leases = leasesFor(config, database, log, "once");
  const budget = budgetFor(config);
  const metrics = ctx.progress ? new Metrics({ retentionMs: config.retentionMs, defaultMetrics: false }) : undefined;
  const ingester = createIngester(config, database.pool, log, { leases, budget, ...(metrics ? { metrics } : {}) });
  const progress =
    ctx.progress && metrics
      ? showCycleProgress({ terminal: ctx.progress, metrics, budget, streams: ingester.targets.length })
      : undefined;
  try {
    const outcomes = await ingester.runAll(signal);
    await progress?.stop();
    logOutcomes(outcomes, signal, log, "once");
    if (signal.aborted) {
      // Stopped by SIGTERM/SIGINT/SIGHUP: the aborted cycle rolled back and is not a failure (exit 0, as for `run`;
      // it used to be classified as an internal error, 70 — found by the fault campaign).
      log.info("stopped by signal");
      return EXIT.ok;
    }
    return onceExitCode(outcomes);
  } finally {
    await progress?.stop();
    await ingester.close();
    await leases.close();
  }
}

/**
 * `once`: 0 when every configured target was polled and succeeded; otherwise the most telling failure (internal,
 * then config, then temporary). A target another replica holds (not polled by this run) counts as temporary (75).
 */
export function onceExitCode(outcomes: readonly TargetOutcome[]): ExitCode {
  const codes = outcomes.map((o) => (o.error ? exitCodeFor(o.error) : o.standby ? EXIT.temporary : EXIT.ok));
  for (const code of [EXIT.internal, EXIT.config, EXIT.temporary] as const) {
    if (codes.includes(code)) {
      return code;
    }
  }
  return EXIT.ok;
}

/** `run`: the ops listener, the schedule, and on shutdown the one path that stops them in order. */
async function run(ctx: CommandContext): Promise<ExitCode> {
  const { config, database, log, signal } = ctx;
  const metrics = new Metrics({ retentionMs: config.retentionMs });
  // Checkpoint lag is reported from the first scrape, before any cycle has run.
  for (const row of await readCheckpoints(database.pool)) {
    metrics.checkpoint(row.tenantId, row.stream, row.position);
  }
  const tracker = new ReadinessTracker(
    config.tenants.flatMap((t) => t.streams.map((stream) => ({ tenantId: t.tenantId, stream }))),
    { maxAgeMs: config.readyCycleMultiple * scheduleIntervalMs(config.pollSchedule), startedAt: new Date() },
  );
  const ops =
    config.metricsPort === 0
      ? undefined
      : await startOpsServer({
          host: config.metricsHost,
          port: config.metricsPort,
          db: database.pool,
          metrics,
          readiness: { tracker, now: () => new Date() },
          log,
        }).catch((error: unknown) => {
          throw listenProblem(error, "METRICS_PORT", `${config.metricsHost}:${config.metricsPort}`) ?? error;
        });
  const leases = leasesFor(config, database, log, "run");
  const ingester = createIngester(config, database.pool, log, { metrics, leases, sweepsInBackground: true });
  try {
    await runScheduled(config, ingester, signal, log, partitionMaintenance(config, database, log), tracker);
  } finally {
    await ops?.close();
    await ingester.close();
    await leases.close();
  }
  return EXIT.ok;
}

/**
 * Logs what went wrong per (tenant, stream): one failing tenant is reported, never stops the others. A stream this
 * process did not poll is logged with who holds it (`once`: warn, as it makes the exit code 75; `run`: debug, as a
 * standby's normal state, and once at info when every stream is elsewhere). What a failure leads to is said as it
 * is: `run` resumes on the next tick; `once` has none, so it says whether running it again can help.
 */
function logOutcomes(outcomes: readonly TargetOutcome[], signal: AbortSignal, log: Logger, mode: "run" | "once"): void {
  const standby = outcomes.filter((o) => o.standby);
  if (standby.length > 0 && standby.length === outcomes.length) {
    log.info({ targets: standby.length }, "another replica holds every lease; standing by");
  }
  for (const outcome of standby) {
    const h = outcome.holder;
    log[mode === "once" ? "warn" : "debug"](
      {
        tenant_id: outcome.target.tenant.tenantId,
        stream: outcome.target.stream.name,
        ...(h ? { holder: h.holder, holder_host: h.host, holder_pid: h.pid, lease_expires: h.expiresAt } : {}),
      },
      h ? "stream skipped: another replica holds its lease" : "stream skipped: beyond this replica's fair share",
    );
  }
  for (const outcome of outcomes) {
    if (outcome.error && !signal.aborted) {
      const code = exitCodeFor(outcome.error);
      log.error(
        {
          err: outcome.error,
          exitCode: code,
          tenant_id: outcome.target.tenant.tenantId,
          stream: outcome.target.stream.name,
        },
        outcome.error instanceof LockedElsewhereError
          ? "another replica holds the lease; standing by"
          : mode === "run"
            ? "cycle failed; the next tick resumes from the checkpoint"
            : code === EXIT.config
              ? "cycle failed: fix the configuration or credential; running again will not help until then"
              : code === EXIT.temporary
                ? "cycle failed; running 'once' again resumes from the checkpoint"
                : "cycle failed: unexpected error; the checkpoint did not move past unstored data",
      );
    }
  }
}

/**
 * Creates next months' partitions and drops those past RETENTION; after a success, at most once an hour. A failure
 * (a lock timeout behind a long dashboard query, say) is logged and retried on the next tick; it never holds up
 * ingestion, which creates the months it writes itself.
 */
function partitionMaintenance(config: Config, database: Database, log: Logger): () => Promise<void> {
  let last = 0;
  return async () => {
    if (Date.now() - last < 60 * 60_000) {
      return;
    }
    const now = new Date();
    try {
      await ensureUpcomingPartitions(database.pool, now, 2);
      if (config.storeRetentionMs !== undefined) {
        const dropped = await withTransaction(database.pool, (client) =>
          dropExpiredPartitions(client, config.storeRetentionMs as number, now),
        );
        if (dropped.length > 0) {
          log.info({ dropped: dropped.map((d) => d.name) }, "partitions past RETENTION dropped");
        }
      }
      last = Date.now();
    } catch (error) {
      log.warn({ err: error }, "partition maintenance failed; the next tick retries");
    }
  };
}

async function runScheduled(
  config: Config,
  ingester: Ingester,
  signal: AbortSignal,
  log: Logger,
  maintain: () => Promise<void>,
  tracker: ReadinessTracker,
): Promise<void> {
  const schedule = startSchedule(
    config.pollSchedule,
    async () => {
      try {
        await maintain();
        const outcomes = await ingester.runAll(signal);
        logOutcomes(outcomes, signal, log, "run");
        tracker.observe(
          outcomes.map((o) => ({
            tenantId: o.target.tenant.tenantId,
            stream: o.target.stream.name,
            ...(o.result ? { windows: o.result.windows.length } : {}),
            ...(o.error ? { error: o.error } : {}),
            ...(o.standby ? { standby: true } : {}),
            ...(o.holder ? { holder: o.holder.holder } : {}),
          })),
          new Date(),
        );
      } catch (error) {
        if (!signal.aborted) {
          log.error({ err: error }, "tick failed (database unavailable?); the next tick retries");
        }
      }
    },
    log,
  );
  log.info({ schedule: config.pollSchedule, targets: ingester.targets.length }, "scheduled");
  await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
  await schedule.stop();
}

export const RUN_COMMAND: DatabaseCommand = {
  name: "run",
  summary: "apply migrations, run a cycle now and then on every POLL_SCHEDULE tick, until SIGTERM/SIGINT/SIGHUP",
  help: RUN_HELP,
  needs: { database: true, tenants: "required", network: true, databaseWait: "setting" },
  output: "logs",
  options: {},
  positionals: false,
  run,
};

export const ONCE_COMMAND: DatabaseCommand = {
  name: "once",
  summary:
    "apply migrations, run one cycle, exit (0 success, 75 temporary failure, 78 configuration/credentials/licence)",
  help: ONCE_HELP,
  needs: { database: true, tenants: "required", network: true, databaseWait: "setting" },
  output: "logs",
  options: {},
  positionals: false,
  run: once,
};
