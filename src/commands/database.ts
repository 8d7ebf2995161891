// Opens the database for a command and says what a failure means: a setting to fix (ConfigError naming DATABASE_URL,
// DATA_DIR or EMBEDDED_PG_PORT: exit 78, no retries) or a server that is away (TemporaryError: exit 75).

import { readFileSync } from "node:fs";
import path from "node:path";

import { type Database, openDatabase } from "../app.ts";
import type { Config } from "../config.ts";
import { ConfigError, databaseSettingProblem, isTemporaryDatabaseError, TemporaryError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { formatDuration, SECOND } from "../time.ts";
import type { Needs } from "./types.ts";

/** A person at a terminal waits this long for PostgreSQL at most (`status`, `check` …), whatever DATABASE_WAIT says. */
const BRIEF_DATABASE_WAIT_MS = 5 * SECOND;

/** File-system codes that mean DATA_DIR cannot be used (not that something is temporarily away). */
const DATA_DIR_CODES = new Set(["EACCES", "EPERM", "EROFS", "ENOTDIR", "EEXIST", "EISDIR", "ENOSPC", "ELOOP"]);

/** The embedded server's log (src/store/embedded.ts starts it with `pg_ctl --log <DATA_DIR>/pg/server.log`). */
function embeddedServerLog(dataDir: string): string {
  return path.join(path.resolve(dataDir), "pg", "server.log");
}

export async function openCommandDatabase(
  config: Config,
  log: Logger,
  signal: AbortSignal,
  wait: Needs["databaseWait"],
): Promise<Database> {
  const waitMs = wait === "brief" ? Math.min(config.databaseWaitMs, BRIEF_DATABASE_WAIT_MS) : config.databaseWaitMs;
  try {
    return await openDatabase({ ...config, databaseWaitMs: waitMs }, log, signal);
  } catch (error) {
    if (signal.aborted) {
      throw error;
    }
    throw classifyOpenError(error, config, waitMs);
  }
}

/** What an error while opening the database means, by its code: a ConfigError, a TemporaryError, or itself. */
function classifyOpenError(error: unknown, config: Config, waitMs: number): unknown {
  const code = (error as { code?: unknown } | undefined)?.code;
  const message = error instanceof Error ? error.message : String(error);
  if (config.databaseUrl === undefined) {
    if (typeof code === "string" && DATA_DIR_CODES.has(code)) {
      return new ConfigError([`DATA_DIR: ${config.dataDir} cannot hold the embedded PostgreSQL (${message})`], {
        cause: error,
      });
    }
    if (/^pg_ctl start failed/.test(message)) {
      const logFile = embeddedServerLog(config.dataDir);
      const serverLog = tail(logFile);
      if (/could not bind|Address already in use/i.test(serverLog)) {
        return new ConfigError(
          [
            `EMBEDDED_PG_PORT: port ${config.embeddedPgPort} on 127.0.0.1 is already in use (another PostgreSQL, or one left running by an earlier process): set EMBEDDED_PG_PORT to a free port or stop that server. Server log: ${logFile}`,
          ],
          { cause: error },
        );
      }
      const last = serverLog.trim().split("\n").slice(-1)[0] ?? message;
      return new ConfigError(
        [`DATA_DIR: the embedded PostgreSQL under ${config.dataDir} did not start (${last}). Server log: ${logFile}`],
        { cause: error },
      );
    }
  }
  const variable = config.databaseUrl === undefined ? "the embedded PostgreSQL (DATA_DIR)" : "DATABASE_URL";
  const problem = databaseSettingProblem(error);
  if (problem !== undefined) {
    return new ConfigError([`${variable}: ${problem}`], { cause: error });
  }
  if (isTemporaryDatabaseError(error)) {
    return new TemporaryError(
      `PostgreSQL at ${where(config)} (${variable}) did not answer within ${formatDuration(waitMs)}: ${message}; check that the server runs and that ${variable} names its host and port`,
      { cause: error },
    );
  }
  return error;
}

/** host:port of the database, without user or password. */
function where(config: Config): string {
  if (config.databaseUrl === undefined) {
    return `127.0.0.1:${config.embeddedPgPort}`;
  }
  try {
    const url = new URL(config.databaseUrl);
    return `${url.hostname || "localhost"}:${url.port || "5432"}`;
  } catch {
    return "the configured host";
  }
}

function tail(file: string): string {
  try {
    return readFileSync(file, "utf8").slice(-4000);
  } catch {
    return "";
  }
}
