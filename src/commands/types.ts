// The shape of a command in the CLI's one table (src/commands/table.ts): its help, what it needs, where its output
// goes, its options, and its handler. No `process` here: src/cli.ts hands each handler what it needs.

import type { Writable } from "node:stream";
import type { ParseArgsOptionsConfig } from "node:util";

import type { Database } from "../app.ts";
import type { Config } from "../config.ts";
import type { ExitCode } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { ParsedArgs } from "./args.ts";

/** A terminal line to redraw progress on (stderr when it is a TTY, or PROGRESS=on); undefined: none. */
export interface ProgressTerminal {
  write(text: string): unknown;
  columns?: number;
}

export interface Needs {
  /** The database, opened and migrated before the handler runs. */
  database: true;
  /**
   * Graph tenants and their credentials: `required` (a configuration error without them), `optional` (used when
   * configured: import, export, status need only the database), `none`.
   */
  tenants: "required" | "optional" | "none";
  /** Talks to Microsoft Graph. */
  network: boolean;
  /**
   * How long to wait for PostgreSQL at start: DATABASE_WAIT for services started with their database (`run`,
   * `once`), or a few seconds for a person at a terminal.
   */
  databaseWait: "setting" | "brief";
}

/** Where a command's output goes: `data` keeps stdout for its result (logs on stderr); `logs` writes logs to stdout. */
type Output = "data" | "logs";

interface BareContext {
  args: ParsedArgs;
  /** The arguments as given (for commands with their own parser: simulate). */
  argv: string[];
  out: Writable;
  err: Writable;
}

export interface CommandContext extends BareContext {
  config: Config;
  database: Database;
  log: Logger;
  /** Aborted by SIGTERM, SIGINT or SIGHUP. */
  signal: AbortSignal;
  /** Configured tenant ids (none when `tenants: optional` and no credentials are set). */
  tenants: string[];
  progress: ProgressTerminal | undefined;
}

interface CommonSpec {
  name: string;
  /** One line for the command list. */
  summary: string;
  /** `--help`: starts with a `Usage:` line. */
  help: string;
  output: Output;
  /** Options (besides --help), parsed with strict parseArgs: an unknown one is a usage error (64). */
  options: ParseArgsOptionsConfig;
  positionals: boolean;
  /** The command parses its own arguments (and answers --help itself): `simulate`. */
  ownArguments?: true;
}

export interface DatabaseCommand extends CommonSpec {
  needs: Needs;
  run(ctx: CommandContext): Promise<ExitCode>;
}

/** A command that needs no configuration, database or network (config-doc, simulate). */
interface BareCommand extends CommonSpec {
  needs: "nothing";
  run(ctx: BareContext): Promise<ExitCode>;
}

export type CommandSpec = DatabaseCommand | BareCommand;
