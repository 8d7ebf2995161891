// Error classes the daemon decides on, and the exit code each one maps to (sysexits.h convention).

export const EXIT = {
  ok: 0,
  /** Unexpected failure: a bug, or Graph refusing a request it should accept (400). */
  internal: 70,
  /** Wrong command-line usage. */
  usage: 64,
  /** Input data could not be used (a file given to `import` is not a readable event export). */
  data: 65,
  /** Nothing to work on: `export --tenant` names a tenant with no stored events. */
  noInput: 66,
  /** Temporary: Graph or PostgreSQL unavailable, throttled past the retry budget, deadline hit. */
  temporary: 75,
  /** Configuration, credential, permission or licence problem: retrying will not help. */
  config: 78,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** Fix text for a ConfigError, shown after its problems. */
const CONFIG_FIX = "fix the named setting: see README.md (Configuration) or 'node src/cli.ts config-doc'";

/**
 * One or more configuration values are missing or invalid; `problems` names each variable and its fix. Also what a
 * setting that parses but does not work turns into (a DATA_DIR that is a file, a METRICS_PORT in use, a wrong
 * password in DATABASE_URL): see databaseSettingProblem, listenProblem and src/commands/database.ts.
 */
export class ConfigError extends Error {
  override name = "ConfigError";
  readonly problems: string[];
  readonly temporary = false;
  readonly fix = CONFIG_FIX;
  constructor(problems: string[], options?: ErrorOptions) {
    super(
      problems.length === 1
        ? `Invalid configuration: ${problems[0] ?? ""}`
        : `Invalid configuration (${problems.length} problems):\n` + problems.map((p) => `  - ${p}`).join("\n"),
      options,
    );
    this.problems = problems;
  }
}

/** The token endpoint refused our credentials (wrong secret, unknown app or tenant). */
export class CredentialError extends Error {
  override name = "CredentialError";
  readonly code: string;
  readonly temporary = false;
  /** What the failure is, without the fix (the message is `detail. Fix: fix`). */
  readonly detail: string;
  readonly fix: string;
  constructor(detail: string, code: string, options?: ErrorOptions & { fix?: string }) {
    super(options?.fix ? `${detail}. Fix: ${options.fix}` : detail, options);
    this.code = code;
    this.detail = detail;
    this.fix = options?.fix ?? "check AZURE_TENANT_ID, AZURE_CLIENT_ID and the credential";
  }
}

/** Graph refused access: missing licence (P1/P2) or missing permission (AuditLog.Read.All). */
export class AccessError extends Error {
  override name = "AccessError";
  readonly code: string;
  readonly temporary = false;
  readonly detail: string;
  readonly fix: string;
  constructor(message: string, code: string, fix: string) {
    super(`${message} (${code}). Fix: ${fix}`);
    this.code = code;
    this.detail = `${message} (${code})`;
    this.fix = fix;
  }
}

const TEMPORARY_FIX = "a temporary problem (network, Graph or throttling): try again later";

/** A transient failure that outlived its retries (5xx, 429, network, timeout). The next cycle resumes. */
export class TemporaryError extends Error {
  override name = "TemporaryError";
  readonly temporary = true;
  readonly fix: string = TEMPORARY_FIX;
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
  readonly temporary = false;
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

/** What an error means for a person: what happened, what to do, and whether trying again later may help. */
export interface Diagnosis {
  detail: string;
  fix: string;
  temporary: boolean;
}

/** Diagnoses by type (never by message text): the error classes above carry `detail`, `fix` and `temporary`. */
export function diagnose(error: unknown): Diagnosis {
  if (error instanceof CredentialError || error instanceof AccessError) {
    return { detail: error.detail, fix: error.fix, temporary: false };
  }
  if (error instanceof ConfigError) {
    return { detail: error.problems.join("; "), fix: error.fix, temporary: false };
  }
  if (error instanceof GraphProtocolError && error.status === 400) {
    return {
      detail: error.message,
      fix: "Graph refused the query: beta streams may be unavailable in this cloud, or the date is beyond the tenant's retention",
      temporary: false,
    };
  }
  const temporary = exitCodeFor(error) === EXIT.temporary;
  return {
    detail: coerceError(error).message,
    fix: temporary ? TEMPORARY_FIX : "an unexpected answer: run again with LOG_LEVEL=debug and report it",
    temporary,
  };
}

// Connection failures that mean the database settings are wrong, not that the server is away: retrying will not help.
const DATABASE_SETTING_SQLSTATES: Record<string, string> = {
  "28P01": "the server refuses the password",
  "28000": "the server refuses this user, host or SSL mode (pg_hba.conf)",
  "3D000": "the database it names does not exist",
};
const DATABASE_TLS_CODES = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

/** Why connecting failed because of the connection settings (undefined: the server may come back). */
export function databaseSettingProblem(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  const message = error instanceof Error ? error.message : String(error);
  if (typeof code === "string" && code in DATABASE_SETTING_SQLSTATES) {
    return `${DATABASE_SETTING_SQLSTATES[code] ?? ""} (SQLSTATE ${code}: ${message})`;
  }
  if (code === "ERR_INVALID_URL") {
    return "it is not a valid URL";
  }
  if (typeof code === "string" && DATABASE_TLS_CODES.has(code)) {
    return `the server's TLS certificate is not trusted (${code}); set sslmode or sslrootcert in the URL`;
  }
  if (/client password must be a string|The server does not support SSL connections/.test(message)) {
    return `it does not fit the server (${message})`;
  }
  return undefined;
}

/** Node's codes for a port or address a listener cannot have. */
const LISTEN_CODES: Record<string, string> = {
  EADDRINUSE: "is already in use by another process",
  EACCES: "may not be opened by this user (ports below 1024 need privileges)",
  EADDRNOTAVAIL: "is not an address of this machine",
};

/** Why a listener could not start, naming `variable`; undefined when it failed for another reason. */
export function listenProblem(error: unknown, variable: string, address: string): ConfigError | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  const what = typeof code === "string" ? LISTEN_CODES[code] : undefined;
  return what === undefined
    ? undefined
    : new ConfigError(
        [`${variable}: ${address} ${what} (${String(code)}); choose another port or stop the other process`],
        {
          cause: error,
        },
      );
}
