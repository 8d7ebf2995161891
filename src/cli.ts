#!/usr/bin/env node
// Entry point: commands, signals and exit codes. The only module that touches `process`.

// (issue 14) First: bounded young generation and compile cache for every command (src/runtime.ts).
import "./runtime.ts";

import { parseArgs } from "node:util";

import dotenv from "dotenv";

import {
  applyMigrations,
  createIngester,
  type Database,
  type Ingester,
  onceExitCode,
  openDatabase,
  type TargetOutcome,
} from "./app.ts";
import { type Config, configTableMarkdown, loadConfig } from "./config.ts";
import { ConfigError, EXIT, type ExitCode, exitCodeFor, LockedElsewhereError } from "./errors.ts";
import { GraphBudget } from "./graph/budget.ts";
import { runBackfill } from "./ingest/backfill.ts";
import { createProgressDisplay } from "./ingest/progress.ts";
import { isStreamName, streamSpec } from "./ingest/streams.ts";
import { scheduleIntervalMs, startSchedule } from "./ingest/scheduler.ts";
import { createLogger, type Logger } from "./log.ts";
import { Metrics } from "./metrics.ts";
import { redact } from "./redact.ts";
import { startOpsServer } from "./ops-server.ts";
import { formatChecks, runChecks } from "./check.ts";
import { EXPORT_HELP, exportCommand, IMPORT_HELP, importCommand } from "./io/commands.ts";
import { withQueryAbort, withTransaction } from "./store/db.ts";
import { dropExpiredPartitions, ensureUpcomingPartitions } from "./store/partitions.ts";
import { formatStatus, readStatus } from "./status.ts";
import { readCheckpoints } from "./store/checkpoints.ts";
import { type ReplicaKind, StreamLeases } from "./store/leases.ts";
import { ReadinessTracker } from "./readiness.ts";
import { parseDuration, systemClock } from "./time.ts";

const USAGE = `signin-ingest: keeps a PostgreSQL copy of a Microsoft Entra ID tenant's sign-in logs.

Usage: node src/cli.ts <command> [--help]

Commands:
  run         apply migrations, run a cycle now and then on every POLL_SCHEDULE tick, until SIGTERM/SIGINT
  once        apply migrations, run one cycle, exit (0 success, 75 temporary failure, 78 configuration/credentials/licence)
  backfill    read a past range (e.g. --from 30d) in concurrent time slices within the throttle budget; resumable
  migrate     apply database migrations and exit
  import      load archived sign-in files (the old sample's SigninActivities*.json, Graph pages, JSON lines), idempotently
  export      write stored events (--from/--to) to stdout as JSON lines or Graph pages
  check       preflight: token, each enabled stream, retention; prints what to fix (exit 0 only if all pass)
  status      per tenant and stream: checkpoint, lag, last cycle, events stored, retention risk (--json)
  simulate    start the local Microsoft Graph simulator (see 'simulate --help')
  config-doc  print the configuration table (Markdown)

Configuration comes from the environment and a .env file in the working directory; see README.md.
Exit codes: 0 ok, 64 usage, 70 internal error, 75 temporary failure (retry later), 78 configuration, credential,
permission or licence problem.`;

const COMMAND_HELP: Record<string, string> = {
  run: `Usage: node src/cli.ts run

Applies migrations, runs one cycle at once, then one per POLL_SCHEDULE tick (UTC cron), never two at a time.
SIGTERM or SIGINT stops the schedule, aborts in-flight requests, rolls back an open transaction, closes the
database and exits 0. A second signal exits at once with 130. A cycle that fails is logged and retried on the
next tick; the checkpoint only moves when a window is completely stored.`,
  once: `Usage: node src/cli.ts once

Applies migrations, runs one cycle and exits: 0 success, 75 temporary failure (Graph or PostgreSQL unavailable,
throttled past the retry budget, malformed page), 78 configuration, credential, permission or licence problem,
70 unexpected error.`,
  migrate: `Usage: node src/cli.ts migrate

Applies pending database migrations (needs only DATABASE_URL, or DATA_DIR for the embedded database) and exits.`,
  import: IMPORT_HELP,
  export: EXPORT_HELP,
  check: `Usage: node src/cli.ts check [--json]

For every tenant: gets a token, asks Graph for one event per enabled stream and for the oldest window that
GRAPH_RETENTION promises, and prints a checklist with the fix for each failure (wrong secret, consent missing for
AuditLog.Read.All, no P1/P2 licence, beta stream refused, retention). Exit 0 only when everything works, 78 when a
check failed for a configuration reason, 75 for a temporary one. The result is kept and shown by \`status\`.`,
  status: `Usage: node src/cli.ts status [--json]

Per tenant and stream: the checkpoint (data is complete up to it), lag, the last cycle's result and error, events
stored, rejected events and the retention risk (data older than GRAPH_RETENTION cannot be read from Graph any
more). A table for people, or --json for scripts. Needs only the database settings.`,
  backfill: `Usage: node src/cli.ts backfill --from <time> [--to <time>] [--tenant ID] [--stream NAME] [--concurrency N]
                                 [--slice 1h] [--reserve N]

Reads [from, to] of one tenant's stream (default: the first configured tenant and its first stream) into the
database as time slices, several at a time, within the Graph throttle budget (GRAPH_BUDGET_*), and records each
slice in the coverage ledger. A re-run (after a
crash, a signal or a failure) reads only what the ledger does not cover yet. Does not move the checkpoint and
does not take the tail's lock, so it runs beside 'run'.

  --from          ISO time (2026-11-01T00:00:00Z) or age (30d, 12h); clamped to GRAPH_RETENTION
  --to            ISO time or age; default now − SETTLE
  --concurrency   most slices at once (default 6; fewer while Graph answers 429)
  --slice         length of the first slices (default 1h; later ones follow the event density)
  --reserve       budget slots per window left to a daemon polling the same tenant (default 1; 0 when none runs)

Progress: one line on a terminal (stderr), log lines otherwise. Exit codes as for 'once'.`,
  "config-doc": `Usage: node src/cli.ts config-doc

Prints the configuration table (Markdown) generated from the schema that validates the environment.`,
};

const RESULT_COMMANDS = new Set(["check", "status", "export", "import"]);
const DATABASE_ONLY = new Set(["migrate", "status"]);
const OFFLINE_COMMANDS = new Set(["import", "export"]);

function write(text: string): void {
  process.stdout.write(text.endsWith("\n") ? text : text + "\n");
}

/**
 * Aborts `controller` on the first SIGTERM/SIGINT; a second signal exits immediately. Whatever still runs
 * SHUTDOWN_GRACE after the first signal (a database that stopped answering) is abandoned: exit 75.
 */
function installSignals(controller: AbortController, log: Logger, graceMs: number): void {
  let count = 0;
  const handler = (signal: NodeJS.Signals) => {
    count++;
    if (count === 1) {
      log.info({ signal }, "shutting down");
      controller.abort(new Error(`received ${signal}`));
      setTimeout(() => {
        log.error({ graceMs }, "shutdown took longer than SHUTDOWN_GRACE; exiting without waiting");
        log.flush();
        process.exit(EXIT.temporary);
      }, graceMs).unref();
    } else {
      log.warn({ signal }, "second signal: exiting without waiting");
      process.exit(130);
    }
  };
  process.on("SIGTERM", handler);
  process.on("SIGINT", handler);
}

async function withDatabase(
  config: Config,
  log: Logger,
  signal: AbortSignal,
  work: (database: Database) => Promise<ExitCode>,
): Promise<ExitCode> {
  const database = await openDatabase(config, log, signal);
  try {
    await applyMigrations(database, log);
    // Every query of the command on the pool is cancelled by SIGTERM/SIGINT (src/store/db.ts withQueryAbort).
    return await withQueryAbort(signal, () => work(database));
  } finally {
    await database.close();
  }
}

async function main(argv: string[]): Promise<ExitCode> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "--help" || command === "-h" || command === "help") {
    write(USAGE);
    return command === undefined ? EXIT.usage : EXIT.ok;
  }
  if (command === "simulate") {
    const { simulateCommand } = await import("./simulator/main.ts");
    await simulateCommand(rest);
    return EXIT.ok;
  }
  const help = COMMAND_HELP[command];
  if (help === undefined) {
    process.stderr.write(`Unknown command "${command}".\n\n${USAGE}\n`);
    return EXIT.usage;
  }
  const { values } = parseArgs({
    args: rest,
    options: { help: { type: "boolean", short: "h" }, json: { type: "boolean" } },
    strict: false,
  });
  if (values.help) {
    write(help);
    return EXIT.ok;
  }
  if (command === "config-doc") {
    write(configTableMarkdown());
    return EXIT.ok;
  }

  dotenv.config({ quiet: true });
  let config: Config;
  try {
    config = loadConfig(process.env, { require: DATABASE_ONLY.has(command) ? "database" : "all" });
  } catch (error) {
    // import/export need the database, and the tenants only when configured: no Graph credentials.
    if (error instanceof ConfigError && OFFLINE_COMMANDS.has(command)) {
      return offlineCommand(command, rest);
    }
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\nSee README.md (Configuration) or 'node src/cli.ts config-doc'.\n`);
      return EXIT.config;
    }
    throw error;
  }
  // Commands whose output is data (a checklist, a status table, an export) keep stdout for it; logs go to stderr.
  const log = createLogger(config.logLevel, RESULT_COMMANDS.has(command) ? 2 : 1);
  const controller = new AbortController();
  installSignals(controller, log, config.shutdownGraceMs);
  try {
    return await withDatabase(config, log, controller.signal, async (database) => {
      if (command === "migrate") {
        return EXIT.ok;
      }
      if (command === "status") {
        const rows = await readStatus(database.pool, new Date(), config.retentionMs, configuredStreams());
        write(values.json ? JSON.stringify(rows, null, 2) : formatStatus(rows));
        return EXIT.ok;
      }
      if (command === "backfill") {
        return await backfillCommand(config, database, rest, controller.signal, log);
      }
      if (command === "import" || command === "export") {
        return await ioCommand(
          command,
          rest,
          database,
          config.tenants.map((t) => t.tenantId),
          log,
          controller.signal,
        );
      }
      if (command === "check") {
        const ingester = createIngester(config, database.pool, log, { sweepsInBackground: true });
        try {
          const checks = await runChecks(config, ingester, database.pool, new Date(), controller.signal);
          write(values.json ? JSON.stringify(checks, null, 2) : formatChecks(checks));
          const failed = checks.flatMap((c) => c.items.filter((i) => !i.ok));
          return failed.length === 0
            ? EXIT.ok
            : failed.some((i) => !i.fix?.startsWith("a temporary problem"))
              ? EXIT.config
              : EXIT.temporary;
        } finally {
          await ingester.close();
        }
      }
      if (command === "once") {
        const leases = leasesFor(config, database, log, "once");
        const ingester = createIngester(config, database.pool, log, { leases });
        try {
          const outcomes = await ingester.runAll(controller.signal);
          logOutcomes(outcomes, controller.signal, log, "warn");
          if (controller.signal.aborted) {
            // Stopped by SIGTERM/SIGINT: the aborted cycle rolled back and is not a failure (exit 0, as for `run`;
            // it used to be classified as an internal error, 70 — found by the fault campaign).
            log.info("stopped by signal");
            return EXIT.ok;
          }
          return onceExitCode(outcomes);
        } finally {
          await ingester.close();
          await leases.close();
        }
      }
      await runDaemon(config, database, controller.signal, log);
      return EXIT.ok;
    });
  } catch (error) {
    return failed(error, controller.signal, log);
  } finally {
    log.flush();
  }
}

/** The exit code for an error that ended a command, logged once with what it means (0 after a signal). */
function failed(error: unknown, signal: AbortSignal, log: Logger): ExitCode {
  if (signal.aborted) {
    log.info("stopped by signal");
    return EXIT.ok;
  }
  const code = exitCodeFor(error);
  log.error({ err: error, exitCode: code }, describeFailure(code));
  return code;
}

/** `backfill`: its own budget (leaving `--reserve` slots to a daemon) and its own lock, never the tail's. */
async function backfillCommand(
  config: Config,
  database: Database,
  args: string[],
  signal: AbortSignal,
  log: Logger,
): Promise<ExitCode> {
  const { values: o } = parseArgs({
    args,
    options: {
      from: { type: "string" },
      to: { type: "string" },
      concurrency: { type: "string", default: "6" },
      slice: { type: "string", default: "1h" },
      reserve: { type: "string", default: config.budgetPerTenant > 1 ? "1" : "0" },
      tenant: { type: "string" },
      stream: { type: "string" },
    },
    strict: false,
  });
  const now = Date.now();
  const at = (text: unknown): Date | undefined => {
    const age = typeof text === "string" ? parseDuration(text) : undefined;
    const ms = age !== undefined ? now - age : typeof text === "string" ? Date.parse(text) : NaN;
    return Number.isFinite(ms) ? new Date(ms) : undefined;
  };
  const from = at(o.from);
  const to = o.to === undefined ? new Date(now - config.settleMs) : at(o.to);
  const sliceMs = parseDuration(String(o.slice));
  const concurrency = Number(o.concurrency);
  const reserve = Number(o.reserve);
  const tenant =
    o.tenant === undefined
      ? config.tenants[0]
      : config.tenants.find((t) => t.tenantId === o.tenant || t.name === o.tenant);
  const streamName = o.stream === undefined ? tenant?.streams[0] : String(o.stream);
  const stream =
    streamName !== undefined && isStreamName(streamName)
      ? streamSpec(streamName, tenant?.interactiveApiVersion)
      : undefined;
  if (
    !from ||
    !to ||
    from >= to ||
    !sliceMs ||
    !(concurrency >= 1) ||
    !(reserve >= 0 && reserve < config.budgetPerTenant) ||
    !tenant ||
    !stream
  ) {
    process.stderr.write(
      `backfill: needs --from before --to, a --slice duration, --concurrency ≥ 1, 0 ≤ --reserve < GRAPH_BUDGET_PER_TENANT, and a configured --tenant and --stream.\n\n${COMMAND_HELP.backfill}\n`,
    );
    return EXIT.usage;
  }
  const horizon = now - config.retentionMs + 60_000;
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
    reserve: Math.floor(reserve),
  });
  const ingester = createIngester(config, database.pool, log, { budget });
  try {
    if (!(await leases.tryAcquire(tenant.tenantId, `${stream.name}/backfill`))) {
      throw new LockedElsewhereError("another backfill of this tenant and stream is running");
    }
    const display = createProgressDisplay({ log, terminal: process.stderr.isTTY ? process.stderr : undefined });
    const deps = { db: database.pool, graph: ingester.graphFor(tenant.tenantId), clock: systemClock, budget };
    // Stops (its queries too) on a signal, or when the backfill's lease is lost.
    const lease = leases.signal(tenant.tenantId, `${stream.name}/backfill`);
    const stop = lease ? AbortSignal.any([signal, lease]) : signal;
    const result = await withQueryAbort(stop, () =>
      runBackfill(
        { ...deps, tenantId: tenant.tenantId, graphEndpoint: tenant.graphEndpoint, pageSize: config.pageSize },
        stream,
        from,
        to,
        {
          log,
          signal: stop,
          concurrency: Math.floor(concurrency),
          sliceMs,
          onProgress: (p) => (p.finished ? display.finish(p) : display.update(p)),
        },
      ),
    );
    log.info(result, "backfill complete");
    return EXIT.ok;
  } finally {
    await ingester.close();
    await leases.close();
  }
}

function describeFailure(code: ExitCode): string {
  switch (code) {
    case EXIT.config:
      return "stopped: configuration, credential, permission or licence problem (retrying will not help)";
    case EXIT.temporary:
      return "stopped: temporary failure; a later run resumes from the checkpoint";
    default:
      return "stopped: unexpected error";
  }
}

/** `run`: the ops listener, the schedule, and on shutdown the one path that stops them in order. */
async function runDaemon(config: Config, database: Database, signal: AbortSignal, log: Logger): Promise<void> {
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
}

function leasesFor(config: Config, database: Database, log: Logger, kind: ReplicaKind): StreamLeases {
  return new StreamLeases(database.url, log, {
    kind,
    ttlMs: config.leaseTtlMs,
    heartbeatMs: config.leaseHeartbeatMs,
  });
}

/** The configured (tenant, stream) pairs, for `status`; none when the tenants cannot be read without credentials. */
function configuredStreams(): Array<{ tenantId: string; stream: string }> {
  try {
    return loadConfig(process.env).tenants.flatMap((t) =>
      t.streams.map((stream) => ({ tenantId: t.tenantId, stream })),
    );
  } catch {
    return [];
  }
}

async function ioCommand(
  command: "import" | "export",
  argv: string[],
  database: Database,
  tenants: string[],
  log: Logger,
  signal: AbortSignal,
): Promise<ExitCode> {
  const ctx = { pool: database.pool, log, tenants, out: process.stdout, err: process.stderr, signal };
  return await (command === "import" ? importCommand : exportCommand)(argv, ctx);
}

/** import/export without Graph credentials: database settings only; the tenant comes from --tenant or AZURE_TENANT_ID. */
async function offlineCommand(command: string, argv: string[]): Promise<ExitCode> {
  let config: Config;
  try {
    config = loadConfig(process.env, { require: "database" });
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\nSee README.md (Configuration) or 'node src/cli.ts config-doc'.\n`);
      return EXIT.config;
    }
    throw error;
  }
  const log = createLogger(config.logLevel, 2);
  const controller = new AbortController();
  installSignals(controller, log, config.shutdownGraceMs);
  const tenant = process.env.AZURE_TENANT_ID?.trim().toLowerCase();
  try {
    return await withDatabase(config, log, controller.signal, (database) =>
      ioCommand(command as "import" | "export", argv, database, tenant ? [tenant] : [], log, controller.signal),
    );
  } catch (error) {
    // E.g. PostgreSQL restarted during an export: a classified exit code (75), as for every other command.
    return failed(error, controller.signal, log);
  } finally {
    log.flush();
  }
}

/**
 * Logs what went wrong per (tenant, stream): one failing tenant is reported, never stops the others. A stream this
 * process did not poll is logged with who holds it (`once`: warn, as it makes the exit code 75; `run`: debug, as a
 * standby's normal state, and once at info when every stream is elsewhere).
 */
function logOutcomes(
  outcomes: readonly TargetOutcome[],
  signal: AbortSignal,
  log: Logger,
  skippedLevel: "warn" | "debug" = "debug",
): void {
  const standby = outcomes.filter((o) => o.standby);
  if (standby.length > 0 && standby.length === outcomes.length) {
    log.info({ targets: standby.length }, "another replica holds every lease; standing by");
  }
  for (const outcome of standby) {
    const h = outcome.holder;
    log[skippedLevel](
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
          : "cycle failed; the next tick resumes from the checkpoint",
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
        logOutcomes(outcomes, signal, log);
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

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`signin-ingest: unexpected error: ${redact((error as Error)?.stack ?? String(error))}\n`);
    process.exit(EXIT.internal);
  },
);
