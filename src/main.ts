// The program behind src/cli.ts: finds the command in the one table (src/commands/table.ts), parses its options
// strictly, loads what it needs, runs it, and turns the outcome into an exit code. The only module that touches
// `process`. Loaded by src/cli.ts only after src/runtime.ts ran (compile cache, heap settings).

import dotenv from "dotenv";

import { applyMigrations } from "./app.ts";
import { parseCommandArgs, type ParsedArgs, usageLine } from "./commands/args.ts";
import { openCommandDatabase } from "./commands/database.ts";
import { COMMANDS, findCommand, USAGE } from "./commands/table.ts";
import type { ProgressTerminal } from "./commands/types.ts";
import { type Config, loadCommandConfig, type ProgressMode } from "./config.ts";
import { ConfigError, EXIT, type ExitCode, exitCodeFor } from "./errors.ts";
import { createLogger, type Logger } from "./log.ts";
import { redact } from "./redact.ts";
import { withQueryAbort } from "./store/db.ts";

function write(text: string): void {
  process.stdout.write(text.endsWith("\n") ? text : text + "\n");
}

/**
 * The signals that stop a command: SIGTERM (a service manager), SIGINT (Ctrl-C) and SIGHUP (its terminal closed, an
 * SSH session dropped). Each stops it the same way: rolled back, leases released, the embedded PostgreSQL stopped when
 * this command started it. Without a handler SIGHUP would kill the process on the spot, leaving all of that behind.
 */
const STOP_SIGNALS = ["SIGTERM", "SIGINT", "SIGHUP"] as const;

/**
 * Aborts `controller` on the first stop signal; a second signal exits immediately. Whatever still runs
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
  for (const name of STOP_SIGNALS) {
    process.on(name, handler);
  }
}

/**
 * A closed terminal makes every later write to it fail (EIO; a closed pipe: EPIPE). The output is lost either way;
 * the error must not crash the shutdown that SIGHUP started (an unhandled 'error' event would end the process before
 * it rolled back and stopped its PostgreSQL). Commands that care (`export | head`) still see the error themselves.
 */
function survive(stream: NodeJS.WriteStream): void {
  stream.on("error", () => undefined);
}

/** Where progress lines go: stderr when it is a terminal (PROGRESS=auto) or always (on); nowhere when off. */
function progressTerminal(mode: ProgressMode): ProgressTerminal | undefined {
  const stderr = process.stderr;
  return mode === "on" || (mode === "auto" && stderr.isTTY) ? stderr : undefined;
}

function configProblem(error: ConfigError): string {
  return `${error.message}\nSee README.md (Configuration) or 'node src/cli.ts config-doc'.\n`;
}

async function main(argv: string[]): Promise<ExitCode> {
  survive(process.stdout);
  survive(process.stderr);
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    write(USAGE);
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  const spec = findCommand(name);
  if (spec === undefined) {
    process.stderr.write(
      `unknown command "${name}"; commands: ${COMMANDS.map((c) => c.name).join(", ")} (more: node src/cli.ts --help)\n`,
    );
    return EXIT.usage;
  }
  let args: ParsedArgs = { values: {}, positionals: rest };
  if (spec.ownArguments !== true) {
    const parsed = parseCommandArgs(spec.name, rest, spec.options, spec.positionals);
    if ("usageError" in parsed) {
      process.stderr.write(`${usageLine(parsed.usageError, spec.name, spec.help)}\n`);
      return EXIT.usage;
    }
    if (parsed.values.help === true) {
      write(spec.help);
      return EXIT.ok;
    }
    args = parsed;
  }
  const bare = { args, argv: rest, out: process.stdout, err: process.stderr };
  if (spec.needs === "nothing") {
    return spec.run(bare);
  }

  dotenv.config({ quiet: true });
  let config: Config;
  let tenants: string[];
  try {
    ({ config, tenantIds: tenants } = loadCommandConfig(process.env, spec.needs.tenants));
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(configProblem(error));
      return EXIT.config;
    }
    throw error;
  }
  // Commands whose output is data (a checklist, a status table, an export) keep stdout for it; logs go to stderr.
  const log = createLogger(config.logLevel, spec.output === "data" ? 2 : 1);
  const controller = new AbortController();
  const signal = controller.signal;
  installSignals(controller, log, config.shutdownGraceMs);
  try {
    const database = await openCommandDatabase(config, log, signal, spec.needs.databaseWait);
    try {
      await applyMigrations(database, log);
      // Every query of the command on the pool is cancelled by a stop signal (src/store/db.ts withQueryAbort).
      return await withQueryAbort(signal, () =>
        spec.run({ ...bare, config, database, log, signal, tenants, progress: progressTerminal(config.progress) }),
      );
    } finally {
      await database.close();
    }
  } catch (error) {
    return failed(error, signal, log, spec.output);
  } finally {
    log.flush();
  }
}

/**
 * The exit code for an error that ended a command, said once with what it means (0 after a signal). A classified
 * failure (configuration 78, temporary 75) is one line without a stack trace: a configuration problem on stderr for
 * the person who has to fix it (and in the log when the log is stdout), a temporary one in the log. Only an
 * unexpected error (70) is logged with its stack.
 */
function failed(error: unknown, signal: AbortSignal, log: Logger, output: "data" | "logs"): ExitCode {
  if (signal.aborted) {
    log.info("stopped by signal");
    return EXIT.ok;
  }
  const code = exitCodeFor(error);
  if (error instanceof ConfigError) {
    process.stderr.write(configProblem(error));
    if (output === "logs") {
      log.error({ exitCode: code, problems: error.problems }, describeFailure(code));
    }
    return code;
  }
  if (code === EXIT.internal) {
    log.error({ err: error, exitCode: code }, describeFailure(code));
  } else {
    log.error({ error: (error as Error).message, exitCode: code }, describeFailure(code));
  }
  return code;
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

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`signin-ingest: unexpected error: ${redact((error as Error)?.stack ?? String(error))}\n`);
    process.exit(EXIT.internal);
  },
);
