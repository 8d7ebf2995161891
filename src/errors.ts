// Error classes the daemon decides on, and the exit code each one maps to (sysexits.h convention).

export const EXIT = {
  ok: 0,
  /** Unexpected failure: a bug, or Graph refusing a request it should accept (400). */
  internal: 70,
  /** Wrong command-line usage. */
  usage: 64,
  /** Input data could not be used (a file given to `import` is not a readable event export). */
  data: 65,
  /** Temporary: Graph or PostgreSQL unavailable, throttled past the retry budget, deadline hit. */
  temporary: 75,
  /** Configuration, credential, permission or licence problem: retrying will not help. */
  config: 78,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** One or more configuration values are missing or invalid; `problems` names each variable and its fix. */
export class ConfigError extends Error {
  override name = "ConfigError";
  readonly problems: string[];
  constructor(problems: string[]) {
    super(
      `Invalid configuration (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n` +
        problems.map((p) => `  - ${p}`).join("\n"),
    );
    this.problems = problems;
  }
}

/** The token endpoint refused our credentials (wrong secret, unknown app or tenant). */
export class CredentialError extends Error {
  override name = "CredentialError";
  readonly code: string;
  constructor(message: string, code: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

/** Graph refused access: missing licence (P1/P2) or missing permission (AuditLog.Read.All). */
export class AccessError extends Error {
  override name = "AccessError";
  readonly code: string;
  readonly fix: string;
  constructor(message: string, code: string, fix: string) {
    super(`${message} (${code}). Fix: ${fix}`);
    this.code = code;
    this.fix = fix;
  }
}

/** A transient failure that outlived its retries (5xx, 429, network, timeout). The next cycle resumes. */
export class TemporaryError extends Error {
  override name = "TemporaryError";
}

/**
 * A window Graph could not serve whole: its crawl hit the page cap, or requests kept timing out. The window is
 * split into smaller ones instead of failing forever.
 */
export class WindowTooLargeError extends TemporaryError {
  override name = "WindowTooLargeError";
}

/** Another replica holds the (tenant, stream) lock: this process stands by. */
export class LockedElsewhereError extends TemporaryError {
  override name = "LockedElsewhereError";
}

/** Graph answered something we cannot use (malformed page, foreign nextLink, unexpected 4xx). */
export class GraphProtocolError extends Error {
  override name = "GraphProtocolError";
  readonly status: number | undefined;
  constructor(message: string, status?: number, options?: ErrorOptions) {
    super(message, options);
    this.status = status;
  }
}

/** Turns anything thrown into an Error. */
export function coerceError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}

// SQLSTATE classes that mean "the database is (temporarily) not able to take our work": connection loss, resources,
// shutdown, serialization and deadlock, read-only, and the session timeouts of src/store/db.ts (lock_timeout 55P03,
// statement_timeout or a cancel 57014, idle_in_transaction_session_timeout 25P03).
const TEMPORARY_SQLSTATE_PREFIXES = ["08", "53", "57P", "40001", "40P01", "25006", "55P03", "57014", "25P03"];
const TEMPORARY_NODE_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "EAI_AGAIN"]);

/** True for PostgreSQL errors worth retrying on a later cycle (connection loss, disk full, read-only, shutdown). */
export function isTemporaryDatabaseError(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code !== "string") {
    return (
      error instanceof Error &&
      /Connection terminated|connection timeout|Query read timeout|timeout exceeded when trying to connect/i.test(
        error.message,
      )
    );
  }
  // A row for a month without a partition (retention dropped it meanwhile): the next attempt creates the month
  // before writing (src/store/partitions.ts).
  if (code === "23514" && error instanceof Error && error.message.startsWith("no partition of relation")) {
    return true;
  }
  return TEMPORARY_NODE_CODES.has(code) || TEMPORARY_SQLSTATE_PREFIXES.some((p) => code.startsWith(p));
}

/** The exit code for an error that ended a command. */
export function exitCodeFor(error: unknown): ExitCode {
  if (error instanceof ConfigError || error instanceof CredentialError || error instanceof AccessError) {
    return EXIT.config;
  }
  if (error instanceof TemporaryError || isTemporaryDatabaseError(error)) {
    return EXIT.temporary;
  }
  return EXIT.internal;
}
