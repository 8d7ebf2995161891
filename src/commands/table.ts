// The CLI's one command table: per command its help, what it needs (database, tenants, network), where its output
// goes, its options (parsed strictly by src/cli.ts) and its handler.

import { createIngester } from "../app.ts";
import { checkExitCode, formatChecks, runChecks } from "../check.ts";
import { type Config, configTableMarkdown } from "../config.ts";
import { EXIT } from "../errors.ts";
import { EXPORT_HELP, EXPORT_OPTIONS, IMPORT_HELP, IMPORT_OPTIONS, runExport, runImport } from "../io/commands.ts";
import { formatStatus, readStatus } from "../status.ts";
import { SECOND } from "../time.ts";
import { BACKFILL_COMMAND } from "./backfill.ts";
import { showImportProgress } from "./import-progress.ts";
import { ONCE_COMMAND, RUN_COMMAND } from "./cycles.ts";
import type { CommandContext, CommandSpec } from "./types.ts";

const JSON_OPTION = { json: { type: "boolean" } } as const;

/**
 * `check` is a preflight: a person waits for it. Each request is retried at most twice, quickly, so a host without
 * network (ENOTFOUND) or an unavailable Graph is reported in seconds, not after MAX_RETRIES long backoffs.
 */
function preflightSettings(config: Config): Config {
  return {
    ...config,
    maxRetries: Math.min(config.maxRetries, 2),
    retryBaseDelayMs: Math.min(config.retryBaseDelayMs, SECOND),
    maxRetryAfterMs: Math.min(config.maxRetryAfterMs, 10 * SECOND),
    httpTimeoutMs: Math.min(config.httpTimeoutMs, 30 * SECOND),
  };
}

const write = (ctx: { out: NodeJS.WritableStream }, text: string) =>
  ctx.out.write(text.endsWith("\n") ? text : `${text}\n`);

const CHECK: CommandSpec = {
  name: "check",
  summary: "preflight: token, each enabled stream, retention; prints what to fix (exit 0 only if all pass)",
  help: `Usage: node src/cli.ts check [--json]

For every tenant: gets a token, asks Graph for one event per enabled stream and for the oldest window that
GRAPH_RETENTION promises, and prints a checklist with the fix for each failure (wrong secret, consent missing for
AuditLog.Read.All, no P1/P2 licence, beta stream refused, retention). Exit 0 only when everything works, 78 when a
check failed for a configuration reason, 75 when every failure is temporary (network, Graph unavailable,
throttling). A preflight fails fast: each request is retried at most twice, within seconds. The result is kept and
shown by \`status\`.`,
  needs: { database: true, tenants: "required", network: true, databaseWait: "brief" },
  output: "data",
  options: JSON_OPTION,
  positionals: false,
  async run(ctx: CommandContext) {
    const config = preflightSettings(ctx.config);
    const ingester = createIngester(config, ctx.database.pool, ctx.log, { sweepsInBackground: true });
    try {
      const checks = await runChecks(config, ingester, ctx.database.pool, new Date(), ctx.signal);
      write(ctx, ctx.args.values.json === true ? JSON.stringify(checks, null, 2) : formatChecks(checks));
      return checkExitCode(checks);
    } finally {
      await ingester.close();
    }
  },
};

const STATUS: CommandSpec = {
  name: "status",
  summary: "per tenant and stream: checkpoint, lag, last cycle, events stored, retention risk (--json)",
  help: `Usage: node src/cli.ts status [--json]

Per tenant and stream: the checkpoint (data is complete up to it), lag, the last cycle's result and error, events
stored, rejected events and the retention risk (data older than GRAPH_RETENTION cannot be read from Graph any
more). A table for people, or --json for scripts. Needs only the database settings.`,
  needs: { database: true, tenants: "optional", network: false, databaseWait: "brief" },
  output: "data",
  options: JSON_OPTION,
  positionals: false,
  async run(ctx: CommandContext) {
    const configured = ctx.config.tenants.flatMap((t) => t.streams.map((stream) => ({ tenantId: t.tenantId, stream })));
    const rows = await readStatus(ctx.database.pool, new Date(), ctx.config.retentionMs, configured);
    write(ctx, ctx.args.values.json === true ? JSON.stringify(rows, null, 2) : formatStatus(rows));
    return EXIT.ok;
  },
};

const MIGRATE: CommandSpec = {
  name: "migrate",
  summary: "apply database migrations and exit",
  help: `Usage: node src/cli.ts migrate

Applies pending database migrations (needs only DATABASE_URL, or DATA_DIR for the embedded database) and exits.`,
  needs: { database: true, tenants: "none", network: false, databaseWait: "setting" },
  output: "logs",
  options: {},
  positionals: false,
  run: () => Promise.resolve(EXIT.ok),
};

/** The longest backoff between two tries of a storage request (RETRY_BASE_DELAY doubles up to it, as for Graph). */
const STORAGE_MAX_RETRY_DELAY_MS = 120 * SECOND;

const IMPORT: CommandSpec = {
  name: "import",
  summary:
    "load archived sign-ins (Graph pages, JSON lines, the old sample's files, diagnostic-settings archives on disk or in a storage account), idempotently",
  help: IMPORT_HELP,
  needs: { database: true, tenants: "optional", network: false, databaseWait: "brief" },
  output: "data",
  options: IMPORT_OPTIONS,
  positionals: true,
  run: async (ctx: CommandContext) => {
    const line = ctx.progress
      ? showImportProgress({ terminal: ctx.progress, now: () => performance.now() })
      : undefined;
    try {
      return await runImport(ctx.args, {
        ...ioContext(ctx),
        ...(line ? { onProgress: (p) => line.update(p) } : {}),
        blob: {
          connectionString: ctx.config.storageConnectionString,
          accountKey: ctx.config.storageAccountKey,
          retry: {
            maxTries: ctx.config.maxRetries + 1,
            retryDelayInMs: ctx.config.retryBaseDelayMs,
            maxRetryDelayInMs: STORAGE_MAX_RETRY_DELAY_MS,
          },
        },
      });
    } finally {
      line?.end();
    }
  },
};

const EXPORT: CommandSpec = {
  name: "export",
  summary: "write stored events (--from/--to) to stdout as JSON lines or Graph pages",
  help: EXPORT_HELP,
  needs: { database: true, tenants: "optional", network: false, databaseWait: "brief" },
  output: "data",
  options: EXPORT_OPTIONS,
  positionals: false,
  run: (ctx: CommandContext) => runExport(ctx.args, ioContext(ctx)),
};

function ioContext(ctx: CommandContext) {
  return {
    pool: ctx.database.pool,
    log: ctx.log,
    tenants: ctx.tenants,
    out: ctx.out,
    err: ctx.err,
    signal: ctx.signal,
  };
}

const SIMULATE: CommandSpec = {
  name: "simulate",
  summary: "start the local Microsoft Graph simulator (see 'simulate --help')",
  help: "Usage: node src/cli.ts simulate [options]",
  needs: "nothing",
  output: "logs",
  // The simulator parses its own options strictly and prints its own help (src/simulator/main.ts).
  options: {},
  positionals: true,
  ownArguments: true,
  async run(ctx) {
    const { parseSimulateArgs, simulateCommand } = await import("../simulator/main.ts");
    try {
      parseSimulateArgs(ctx.argv);
    } catch (error) {
      ctx.err.write(
        `simulate: ${(error as Error).message.split("\n")[0] ?? ""}; see 'node src/cli.ts simulate --help'\n`,
      );
      return EXIT.usage;
    }
    await simulateCommand(ctx.argv);
    return EXIT.ok;
  },
};

const CONFIG_DOC: CommandSpec = {
  name: "config-doc",
  summary: "print the configuration table (Markdown)",
  help: `Usage: node src/cli.ts config-doc

Prints the configuration table (Markdown) generated from the schema that validates the environment.`,
  needs: "nothing",
  output: "data",
  options: {},
  positionals: false,
  run(ctx) {
    write(ctx, configTableMarkdown());
    return Promise.resolve(EXIT.ok);
  },
};

export const COMMANDS: readonly CommandSpec[] = [
  RUN_COMMAND,
  ONCE_COMMAND,
  BACKFILL_COMMAND,
  MIGRATE,
  IMPORT,
  EXPORT,
  CHECK,
  STATUS,
  SIMULATE,
  CONFIG_DOC,
];

export function findCommand(name: string): CommandSpec | undefined {
  return COMMANDS.find((c) => c.name === name);
}

export const USAGE = `signin-ingest: keeps a PostgreSQL copy of a Microsoft Entra ID tenant's sign-in logs.

Usage: node src/cli.ts <command> [--help]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(10)}  ${c.summary}`).join("\n")}

Configuration comes from the environment and a .env file in the working directory; see README.md.
Exit codes: 0 ok, 64 usage, 65 unusable input file, 66 nothing to export for the tenant, 70 internal error,
75 temporary failure (retry later), 78 configuration, credential, permission or licence problem.`;
