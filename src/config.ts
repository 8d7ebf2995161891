// The one place that reads configuration: every variable is declared once here (name, default, meaning, parser),
// parsed and checked together, and every problem is reported in one message. The README's table is generated from
// CONFIG_SCHEMA (`node src/cli.ts config-doc`), and a test fails when they drift.

import { accessSync, constants, readFileSync, statfsSync, statSync } from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

import cron from "node-cron";

import { ConfigError } from "./errors.ts";
import type { LogLevel } from "./log.ts";
import {
  INTERACTIVE_API_VERSIONS,
  type InteractiveApiVersion,
  isStreamName,
  STREAM_NAMES,
  type StreamName,
} from "./events/streams.ts";
import { formatDuration, parseDuration } from "./time.ts";

/** One tier of SWEEPS (re-reads of older windows, run by src/ingest/sweeps.ts). */
export interface SweepTier {
  /** How far back the sweep reads, e.g. 3 h. */
  spanMs: number;
  /** How often it runs, e.g. every hour. */
  everyMs: number;
  /** Label, e.g. "3h/1h". */
  name: string;
}

type AuthConfig =
  | { kind: "secret"; secret: string }
  | { kind: "secret-file"; path: string }
  | { kind: "certificate"; path: string; password: string | undefined }
  | { kind: "federated"; tokenFile: string }
  | { kind: "managed-identity" }
  | { kind: "none" };

export interface TenantConfig {
  tenantId: string;
  /** A label for logs and status (TENANT_NAME, or `name` in the tenants file); defaults to the tenant id. */
  name: string;
  clientId: string | undefined;
  auth: AuthConfig;
  authorityHost: string;
  graphEndpoint: string;
  streams: StreamName[];
  /** Graph API of the interactive stream (INTERACTIVE_API_VERSION); absent means beta. */
  interactiveApiVersion?: InteractiveApiVersion;
}

export interface Config {
  databaseUrl: string | undefined;
  dataDir: string;
  embeddedPgPort: number;
  databaseWaitMs: number;
  dbStatementTimeoutMs: number;
  dbLockTimeoutMs: number;
  dbIdleInTransactionTimeoutMs: number;
  leaseTtlMs: number;
  leaseHeartbeatMs: number;
  shutdownGraceMs: number;
  /** TENANTS_FILE, when the tenants come from a file. */
  tenantsFile: string | undefined;
  /** Every tenant to poll, with its credential and streams (one, from the environment, without TENANTS_FILE). */
  tenants: TenantConfig[];
  tenantConcurrency: number;
  pollSchedule: string;
  initialLookbackMs: number;
  overlapMs: number;
  settleMs: number;
  maxWindowMs: number;
  retentionMs: number;
  sweeps: SweepTier[];
  storeRetentionMs: number | undefined;
  maxPagesPerWindow: number;
  pageSize: number;
  budgetPerTenant: number;
  budgetPerApp: number;
  budgetWindowMs: number;
  httpTimeoutMs: number;
  maxRetries: number;
  retryBaseDelayMs: number;
  maxRetryAfterMs: number;
  cycleDeadlineMs: number;
  maxPageBytes: number;
  pageMemoryBytes: number;
  metricsPort: number;
  metricsHost: string;
  readyCycleMultiple: number;
  logLevel: LogLevel;
  progress: ProgressMode;
  /** AZURE_STORAGE_CONNECTION_STRING: the account `import --from-blob` reads. */
  storageConnectionString: string | undefined;
  /** AZURE_STORAGE_ACCOUNT_KEY: the key for a blob URL without a SAS. */
  storageAccountKey: string | undefined;
}

/** Progress lines of `once`, `backfill` and `import` on stderr: on a terminal (auto), always, or never. */
export type ProgressMode = "auto" | "on" | "off";

type Env = Record<string, string | undefined>;
type Parsed = { ok: true; value: unknown } | { ok: false; problem: string };

interface Setting {
  /** Environment variable name. */
  env: string;
  key: string;
  /** Default as written in the environment; undefined = required (unless `optional`). */
  default?: string;
  /** A default that depends on other variables (e.g. hosts per AZURE_CLOUD); `default` documents the usual one. */
  defaultFrom?: (env: Env) => string | undefined;
  optional?: boolean;
  secret?: boolean;
  /** `${env}_FILE` may name a file holding the value instead (Docker/Kubernetes secrets): read once, trimmed. */
  fileVariant?: boolean;
  /** A tenant's setting: a tenants file may set it per tenant or in `defaults`, under `key` (`${key}File` for the
   * `_FILE` variant). Credentials are tenant settings too. */
  tenant?: true;
  /**
   * One of a tenant's credential variables: a tenants-file level that sets any of them replaces every inherited one.
   * `kind`: setting it picks the credential (resolveAuth); `detail`: it only completes one (a certificate's password).
   */
  credential?: "kind" | "detail";
  description: string;
  parse(text: string): Parsed;
}

/**
 * MAX_PAGE_BYTES unless set: 32 KiB per requested event (about eight times a real sign-in with its Conditional
 * Access details) plus 1 MiB. Bytes bound the heap a page can take: JSON.parse of a body of tiny items costs up to
 * about 20 times its size, so an unbounded or generous cap lets one hostile page exhaust the heap.
 */
function defaultMaxPageBytes(pageSize: number): number {
  const events = Number.isInteger(pageSize) && pageSize >= 1 && pageSize <= 1000 ? pageSize : 999;
  return events * 32 * 1024 + 1024 * 1024;
}

/**
 * PAGE_MEMORY_BYTES unless set: 32 MiB, four real-sized pages, so a backfill runs two slices of them. Measured
 * (docs/benchmarks.md, Graph answering in 8 s, 999 real-sized sign-ins a page): 16 MiB (one slice) used 20 % of a
 * tenant's 5 requests / 10 s at 150 MB peak RSS, 32 MiB 36 % at 188 MB, 64 MiB 55 % at 336 MB.
 */
const DEFAULT_PAGE_MEMORY_BYTES = 32 * 1024 * 1024;

const ok = (value: unknown): Parsed => ({ ok: true, value });
const bad = (problem: string): Parsed => ({ ok: false, problem });

/** National clouds: login host and Graph host go together (tokens are not interchangeable between clouds). */
const CLOUDS: Record<string, { authorityHost: string; graphEndpoint: string }> = {
  public: { authorityHost: "https://login.microsoftonline.com", graphEndpoint: "https://graph.microsoft.com" },
  usgov: { authorityHost: "https://login.microsoftonline.us", graphEndpoint: "https://graph.microsoft.us" },
  "usgov-dod": { authorityHost: "https://login.microsoftonline.us", graphEndpoint: "https://dod-graph.microsoft.us" },
  china: {
    authorityHost: "https://login.partner.microsoftonline.cn",
    graphEndpoint: "https://microsoftgraph.chinacloudapi.cn",
  },
};

function parseSweeps(text: string): Parsed {
  if (text.trim().toLowerCase() === "off") {
    return ok([]);
  }
  const tiers: SweepTier[] = [];
  for (const item of text.split(",").map((t) => t.trim())) {
    const [span, every] = item.split("/").map((p) => parseDuration(p ?? ""));
    if (span === undefined || every === undefined || every < 60_000 || span < 60_000) {
      return bad(`has "${item}", which is not span/every (like 3h/1h, both at least 1m); or write off`);
    }
    tiers.push({ spanMs: span, everyMs: every, name: item });
  }
  return ok(tiers);
}

function readableFile(text: string): Parsed {
  try {
    accessSync(text, constants.R_OK);
    return ok(text);
  } catch {
    return bad("is not a readable file");
  }
}

/** A readable file with something in it (a secret). */
function secretFile(text: string): Parsed {
  try {
    return readFileSync(text, "utf8").trim() === "" ? bad("is an empty file") : ok(text);
  } catch (error) {
    return bad(`is not a readable file (${(error as NodeJS.ErrnoException).code ?? "error"})`);
  }
}

function boolean(text: string): Parsed {
  const lower = text.toLowerCase();
  return ["true", "1", "yes"].includes(lower)
    ? ok(true)
    : ["false", "0", "no"].includes(lower)
      ? ok(false)
      : bad("is not true or false");
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DOMAIN = /^[a-z0-9][a-z0-9.-]*\.[a-z]{2,}$/i;
const LOOPBACK = new Set(["localhost", "127.0.0.1", "[::1]", "::1"]);

function duration(min: number, max: number) {
  return (text: string): Parsed => {
    const ms = parseDuration(text);
    if (ms === undefined) {
      return bad("is not a duration; write it like 45s, 15m, 2h or 7d");
    }
    if (ms < min || ms > max) {
      return bad(`is out of range; use between ${formatDuration(min)} and ${formatDuration(max)}`);
    }
    return ok(ms);
  };
}

function integer(min: number, max: number) {
  return (text: string): Parsed => {
    if (!/^\d+$/.test(text.trim())) {
      return bad(`is not a whole number; use ${min}..${max}`);
    }
    const n = Number(text);
    return n >= min && n <= max ? ok(n) : bad(`is out of range; use ${min}..${max}`);
  };
}

function httpsUrl(text: string): Parsed {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return bad("is not a URL; write it like https://graph.microsoft.com");
  }
  if (url.protocol === "http:" && !LOOPBACK.has(url.hostname)) {
    return bad("uses http://, which is only accepted for loopback hosts; use https://");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    return bad("must be an https:// URL");
  }
  if (url.pathname !== "/" || url.search || url.hash) {
    return bad("must be a bare origin without a path, like https://graph.microsoft.com");
  }
  return ok(url.origin);
}

function databaseUrl(text: string): Parsed {
  if (!/^postgres(ql)?:\/\//.test(text)) {
    return bad("does not start with postgres:// or postgresql://");
  }
  try {
    // What node-postgres does with it (pg-connection-string parses it as a WHATWG URL).
    new URL(text);
  } catch {
    return bad(
      "is not a valid URL: percent-encode special characters in the user and password (@ → %40, # → %23, / → %2F)",
    );
  }
  return ok(text);
}

const CRON_FIELDS = [
  { name: "second", min: 0, max: 59 },
  { name: "minute", min: 0, max: 59 },
  { name: "hour", min: 0, max: 23 },
  { name: "day of month", min: 1, max: 31 },
  { name: "month", min: 1, max: 12 },
  { name: "day of week", min: 0, max: 7 },
] as const;
const CRON_NAMES = /^(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|sun|mon|tue|wed|thu|fri|sat)[a-z]*$/i;

/**
 * A cron expression node-cron runs, whose numbers and steps lie inside each field's range: node-cron accepts
 * `*\/61 * * * *` (and runs it as hourly), so the ranges are checked here.
 */
function cronExpression(text: string): Parsed {
  const usage = "is not a valid cron expression; write it like */5 * * * * (minute hour day month weekday, UTC)";
  const fields = text.trim().split(/\s+/);
  if (!cron.validate(text) || (fields.length !== 5 && fields.length !== 6)) {
    return bad(usage);
  }
  const specs = fields.length === 6 ? CRON_FIELDS : CRON_FIELDS.slice(1);
  for (const [i, field] of fields.entries()) {
    const spec = specs[i] as (typeof CRON_FIELDS)[number];
    for (const item of field.split(",")) {
      const [range = "", step] = item.split("/");
      const numbers =
        range === "*" || CRON_NAMES.test(range) ? [] : range.split("-").filter((n) => !CRON_NAMES.test(n));
      const outside = numbers.find((n) => !/^\d+$/.test(n) || Number(n) < spec.min || Number(n) > spec.max);
      if (outside !== undefined) {
        return bad(`has ${outside} in the ${spec.name} field, outside ${spec.min}-${spec.max}`);
      }
      const span = spec.max - spec.min + 1;
      if (step !== undefined && (!/^\d+$/.test(step) || Number(step) < 1 || Number(step) > span)) {
        return bad(`has the step /${step} in the ${spec.name} field; use 1..${span}`);
      }
    }
  }
  return ok(text);
}

// statfs magic numbers of pseudo file systems (Linux): nothing can be stored there, and Node's recursive mkdir loops
// forever under /proc (a core at 100% that ignores SIGTERM).
const PSEUDO_FILE_SYSTEMS = new Map([
  [0x9fa0, "proc"],
  [0x62656572, "sysfs"],
  [0x1cd1, "devpts"],
  [0x64626720, "debugfs"],
  [0x27e0eb, "cgroup"],
  [0x63677270, "cgroup2"],
]);

/** Why `dir` cannot hold the embedded PostgreSQL, or undefined. Looks only, never creates anything. */
function dataDirProblem(dir: string): string | undefined {
  let at = path.resolve(dir);
  for (;;) {
    let stat;
    try {
      stat = statSync(at);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const parent = path.dirname(at);
      if ((code === "ENOENT" || code === "ENOTDIR") && parent !== at) {
        at = parent;
        continue;
      }
      return `cannot be reached (${code ?? (error as Error).message} at ${at})`;
    }
    if (!stat.isDirectory()) {
      return at === path.resolve(dir)
        ? "is a file, not a directory: point DATA_DIR at a directory (it is created if missing)"
        : `cannot be created: ${at} is a file, not a directory`;
    }
    try {
      const type = PSEUDO_FILE_SYSTEMS.get(statfsSync(at).type);
      if (type !== undefined) {
        return `is on the ${type} pseudo file system (${at}), which cannot hold files: use a directory on a disk`;
      }
    } catch {
      // statfs unsupported here: the access check below still applies
    }
    try {
      accessSync(at, constants.W_OK | constants.X_OK);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      return at === path.resolve(dir)
        ? `is not writable by this user (${code ?? "denied"}): fix its permissions or point DATA_DIR elsewhere`
        : `cannot be created: ${at} is not writable by this user (${code ?? "denied"})`;
    }
    return undefined;
  }
}

/**
 * The value of `${setting.env}_FILE`'s file (trimmed); undefined when the variant is unset; null after a problem
 * (unreadable, empty, or both variables set).
 */
function readFileVariant(setting: Setting, env: Env, problems: string[], where: string): string | undefined | null {
  const name = `${setting.env}_FILE`;
  const file = env[name];
  if (file === undefined || file === "") {
    return undefined;
  }
  if (env[setting.env] !== undefined && env[setting.env] !== "") {
    problems.push(`${where}${setting.env} and ${name} are both set: keep one`);
    return null;
  }
  let text: string;
  try {
    text = readFileSync(file, "utf8").trim();
  } catch (error) {
    problems.push(`${where}${name}: ${file} is not readable (${(error as NodeJS.ErrnoException).code ?? "error"})`);
    return null;
  }
  if (text === "") {
    problems.push(`${where}${name}: ${file} is empty`);
    return null;
  }
  return text;
}

const CONFIG_SCHEMA: readonly Setting[] = [
  {
    env: "DATABASE_URL",
    key: "databaseUrl",
    optional: true,
    secret: true,
    fileVariant: true,
    description:
      "PostgreSQL connection string (`postgres://user:pass@host:5432/db`; `PG*` variables and `sslmode` are honoured). Unset: an embedded PostgreSQL is started under `DATA_DIR`.",
    parse: databaseUrl,
  },
  {
    env: "DATA_DIR",
    key: "dataDir",
    default: "./data",
    description:
      "Where the embedded PostgreSQL keeps its files when `DATABASE_URL` is unset: a writable directory (created if missing) on a real file system.",
    parse: ok,
  },
  {
    env: "EMBEDDED_PG_PORT",
    key: "embeddedPgPort",
    default: "54329",
    description: "Port of the embedded PostgreSQL (listens on 127.0.0.1 only).",
    parse: integer(1024, 65535),
  },
  {
    env: "DATABASE_WAIT",
    key: "databaseWaitMs",
    default: "60s",
    description: "How long to wait for PostgreSQL at start before giving up with exit code 75.",
    parse: duration(0, 3_600_000),
  },
  {
    env: "DB_STATEMENT_TIMEOUT",
    key: "dbStatementTimeoutMs",
    default: "2m",
    description:
      "PostgreSQL `statement_timeout` of the daemon's sessions (`0s`: the server's); the client itself gives up on a statement 30 s after this (a blackholed server answers nothing).",
    parse: duration(0, 86_400_000),
  },
  {
    env: "DB_LOCK_TIMEOUT",
    key: "dbLockTimeoutMs",
    default: "30s",
    description:
      "PostgreSQL `lock_timeout`: a statement waiting this long for a lock another session holds fails (the cycle fails with exit 75 and is retried next tick). `0s`: the server's.",
    parse: duration(0, 86_400_000),
  },
  {
    env: "DB_IDLE_IN_TRANSACTION_TIMEOUT",
    key: "dbIdleInTransactionTimeoutMs",
    default: "1m",
    description:
      "PostgreSQL `idle_in_transaction_session_timeout`: the server ends a session of the daemon left idle inside a transaction this long (not for `export`). `0s`: the server's.",
    parse: duration(0, 86_400_000),
  },
  {
    env: "LEASE_TTL",
    key: "leaseTtlMs",
    default: "30s",
    description:
      "How long a replica's lease on a (tenant, stream) lasts without a heartbeat: a standby takes a dead holder's streams after this. A replica that cannot renew its leases aborts their cycles before it passes.",
    parse: duration(2000, 3_600_000),
  },
  {
    env: "LEASE_HEARTBEAT",
    key: "leaseHeartbeatMs",
    default: "5s",
    description:
      "How often a replica renews its leases (at most a third of `LEASE_TTL`); a heartbeat not answered within this is a database that stopped answering.",
    parse: duration(200, 1_200_000),
  },
  {
    env: "SHUTDOWN_GRACE",
    key: "shutdownGraceMs",
    default: "30s",
    description:
      "After SIGTERM/SIGINT the process exits within this: 0 when it stopped cleanly, 75 when something (a hung database) was still in the way.",
    parse: duration(1000, 3_600_000),
  },
  {
    env: "TENANTS_FILE",
    key: "tenantsFile",
    optional: true,
    description:
      "YAML or JSON file listing many tenants (`tenants: [{tenantId, name, clientId, clientSecretFile, streams, …}]`, optional `defaults:`); the AZURE_* variables then act as defaults. See README (Many tenants).",
    parse: readableFile,
  },
  {
    env: "TENANT_CONCURRENCY",
    key: "tenantConcurrency",
    default: "4",
    description: "How many (tenant, stream) cycles run at the same time in one process.",
    parse: integer(1, 64),
  },
  {
    env: "AZURE_TENANT_ID",
    key: "tenantId",
    tenant: true,
    description: "Directory (tenant) ID of the Entra ID tenant, a GUID (or its primary domain).",
    parse: (text) =>
      GUID.test(text) || DOMAIN.test(text)
        ? ok(text.toLowerCase())
        : bad("is not a tenant GUID or domain; copy the Directory (tenant) ID from the app registration"),
  },
  {
    env: "TENANT_NAME",
    key: "name",
    tenant: true,
    optional: true,
    description: "A label for the tenant in logs and `status` (default: the tenant id).",
    parse: ok,
  },
  {
    env: "AZURE_CLOUD",
    key: "cloud",
    tenant: true,
    default: "public",
    description:
      "National cloud: `public`, `usgov` (GCC High), `usgov-dod` or `china`; sets the login and Graph hosts (and so the token scope) together.",
    parse: (text) => (text in CLOUDS ? ok(text) : bad(`is not a cloud; use one of ${Object.keys(CLOUDS).join(", ")}`)),
  },
  {
    env: "AZURE_CLIENT_ID",
    key: "clientId",
    tenant: true,
    optional: true,
    description:
      "Application (client) ID of the app registration, a GUID. Required except with a system-assigned managed identity.",
    parse: (text) =>
      GUID.test(text)
        ? ok(text.toLowerCase())
        : bad("is not a GUID; copy the Application (client) ID from the app registration"),
  },
  {
    env: "AZURE_CLIENT_SECRET",
    key: "clientSecret",
    credential: "kind",
    optional: true,
    secret: true,
    description:
      "Client secret value of the app registration (never logged). One credential is needed: this, or one of the four below.",
    parse: (text) =>
      text.trim() === text ? ok(text) : bad("has leading or trailing whitespace; paste the secret value exactly"),
  },
  {
    env: "AZURE_CLIENT_SECRET_FILE",
    key: "clientSecretFile",
    credential: "kind",
    optional: true,
    description:
      "File holding the client secret (Docker/Kubernetes secrets), trimmed; read at every token renewal, so a rotated secret is picked up. Set it or `AZURE_CLIENT_SECRET`, not both.",
    parse: secretFile,
  },
  {
    env: "AZURE_CLIENT_CERTIFICATE_PATH",
    key: "clientCertificatePath",
    credential: "kind",
    optional: true,
    description:
      "PEM file with the certificate and its private key; the token request carries a PS256-signed client assertion.",
    parse: readableFile,
  },
  {
    env: "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    key: "clientCertificatePassword",
    credential: "detail",
    optional: true,
    secret: true,
    fileVariant: true,
    description: "Password of an encrypted private key in `AZURE_CLIENT_CERTIFICATE_PATH`.",
    parse: ok,
  },
  {
    env: "AZURE_FEDERATED_TOKEN_FILE",
    key: "federatedTokenFile",
    credential: "kind",
    optional: true,
    description:
      "Workload identity federation (as AKS injects it): a file with the external token, used as the client assertion.",
    parse: readableFile,
  },
  {
    env: "AZURE_MANAGED_IDENTITY",
    key: "managedIdentity",
    credential: "kind",
    default: "false",
    description:
      "`true`: use the Azure managed identity (Container Apps, App Service, VMs; user-assigned when `AZURE_CLIENT_ID` is set).",
    parse: boolean,
  },
  {
    env: "AZURE_AUTHORITY_HOST",
    key: "authorityHost",
    tenant: true,
    default: "https://login.microsoftonline.com",
    defaultFrom: (env) => CLOUDS[env.AZURE_CLOUD ?? "public"]?.authorityHost,
    description: "OAuth2 authority (default per `AZURE_CLOUD`). `http://` only for loopback hosts (the simulator).",
    parse: httpsUrl,
  },
  {
    env: "GRAPH_ENDPOINT",
    key: "graphEndpoint",
    tenant: true,
    default: "https://graph.microsoft.com",
    defaultFrom: (env) => CLOUDS[env.AZURE_CLOUD ?? "public"]?.graphEndpoint,
    description:
      "Microsoft Graph origin (default per `AZURE_CLOUD`); the token scope is `{GRAPH_ENDPOINT}/.default`. `http://` only for loopback hosts.",
    parse: httpsUrl,
  },
  {
    env: "STREAMS",
    key: "streams",
    tenant: true,
    default: "interactiveUser",
    description: `Comma-separated streams to read: ${STREAM_NAMES.map((n) => `\`${n}\``).join(", ")}. The sign-in streams use Graph beta (interactiveUser: see INTERACTIVE_API_VERSION); directoryAudits uses v1.0.`,
    parse: (text) => {
      const names = text
        .split(",")
        .map((n) => n.trim())
        .filter((n) => n !== "");
      const unknown = names.filter((n) => !isStreamName(n));
      if (names.length === 0 || unknown.length > 0) {
        return bad(`names unknown streams (${unknown.join(", ") || "none given"}); use ${STREAM_NAMES.join(", ")}`);
      }
      return ok([...new Set(names)]);
    },
  },
  {
    env: "INTERACTIVE_API_VERSION",
    key: "interactiveApiVersion",
    tenant: true,
    default: "beta",
    description:
      "Graph API the interactiveUser stream is read from: `beta` (with authenticationDetails, userAgent, authenticationProtocol … that MFA and device-code detections need) or `v1.0` (Microsoft's supported API, ~24 properties). Each row records its `api_version`.",
    parse: (text) =>
      (INTERACTIVE_API_VERSIONS as readonly string[]).includes(text)
        ? ok(text)
        : bad(`is not an API version; use ${INTERACTIVE_API_VERSIONS.join(" or ")}`),
  },
  {
    env: "POLL_SCHEDULE",
    key: "pollSchedule",
    default: "*/5 * * * *",
    description: "Cron expression (UTC) for cycles in `run`.",
    parse: cronExpression,
  },
  {
    env: "INITIAL_LOOKBACK",
    key: "initialLookbackMs",
    default: "7d",
    description: "How far back the first cycle reads (Graph keeps 30 days on P1/P2, 7 on Free).",
    parse: duration(60_000, 30 * 86_400_000),
  },
  {
    env: "OVERLAP",
    key: "overlapMs",
    default: "30m",
    description: "Each cycle re-reads this much before the checkpoint, to catch late-arriving events.",
    parse: duration(0, 7 * 86_400_000),
  },
  {
    env: "SETTLE",
    key: "settleMs",
    default: "2m",
    description: "The newest part of the log left for the next cycle (Graph's publishing latency).",
    parse: duration(0, 86_400_000),
  },
  {
    env: "MAX_WINDOW",
    key: "maxWindowMs",
    default: "6h",
    description: "A longer gap (after downtime) is read in chunks of this size, each committed with its checkpoint.",
    parse: duration(60_000, 30 * 86_400_000),
  },
  {
    env: "RETENTION",
    key: "storeRetentionMs",
    optional: true,
    description:
      "How long to keep sign-ins in PostgreSQL (e.g. `400d`); whole monthly partitions older than this are dropped, never a mass DELETE. Unset: keep everything.",
    parse: duration(31 * 86_400_000, 36_500 * 86_400_000),
  },
  {
    env: "SWEEPS",
    key: "sweeps",
    default: "3h/1h,2d/1d",
    description:
      "Tiered re-scans for events Graph publishes late: `span/every`, comma-separated (default: the last 3 h every hour and the last 2 days every day), or `off`.",
    parse: parseSweeps,
  },
  {
    env: "MAX_PAGES_PER_WINDOW",
    key: "maxPagesPerWindow",
    default: "500",
    description: "A window whose crawl needs more pages (or keeps timing out) is split in halves instead of failing.",
    parse: integer(2, 100_000),
  },
  {
    env: "GRAPH_RETENTION",
    key: "retentionMs",
    default: "30d",
    description: "How far back Graph still has data (30d on P1/P2); older windows are skipped with a warning.",
    parse: duration(86_400_000, 90 * 86_400_000),
  },
  {
    env: "PAGE_SIZE",
    key: "pageSize",
    default: "999",
    description: "`$top` for each Graph request, 1..1000.",
    parse: integer(1, 1000),
  },
  {
    env: "GRAPH_BUDGET_PER_TENANT",
    key: "budgetPerTenant",
    default: "5",
    description:
      "Graph requests allowed per `GRAPH_BUDGET_WINDOW` per tenant (Graph's reporting limit is 5 per 10 s per app per tenant).",
    parse: integer(1, 100_000),
  },
  {
    env: "GRAPH_BUDGET_PER_APP",
    key: "budgetPerApp",
    default: "122",
    description:
      "Graph requests allowed per `GRAPH_BUDGET_WINDOW` for the app across all tenants (Graph: 122 per 10 s).",
    parse: integer(1, 1_000_000),
  },
  {
    env: "GRAPH_BUDGET_WINDOW",
    key: "budgetWindowMs",
    default: "10s",
    description: "The window of the two budgets above.",
    parse: duration(100, 3_600_000),
  },
  {
    env: "HTTP_TIMEOUT",
    key: "httpTimeoutMs",
    default: "120s",
    description: "Limit for one HTTP request to Graph or the token endpoint (headers and body).",
    parse: duration(100, 3_600_000),
  },
  {
    env: "MAX_RETRIES",
    key: "maxRetries",
    default: "6",
    description:
      "Retries of one request after 429, 5xx, timeouts or connection resets before the cycle fails (also of `import`'s requests to a storage account).",
    parse: integer(0, 100),
  },
  {
    env: "RETRY_BASE_DELAY",
    key: "retryBaseDelayMs",
    default: "5s",
    description:
      "First backoff delay when Graph (or `import`'s storage account) gives no Retry-After; doubles per attempt (with jitter) up to 2m.",
    parse: duration(1, 600_000),
  },
  {
    env: "MAX_RETRY_AFTER",
    key: "maxRetryAfterMs",
    default: "5m",
    description:
      "Longest wait a Retry-After (seconds or HTTP-date) can ask for: both the retry's sleep and the tenant-wide pause after a 429 are clamped to it, with a warning.",
    parse: duration(1, 3_600_000),
  },
  {
    env: "CYCLE_DEADLINE",
    key: "cycleDeadlineMs",
    default: "30m",
    description: "A cycle still running after this is aborted (work committed so far is kept).",
    parse: duration(1000, 86_400_000),
  },
  {
    env: "MAX_PAGE_BYTES",
    key: "maxPageBytes",
    default: String(defaultMaxPageBytes(999)),
    defaultFrom: (env) => String(defaultMaxPageBytes(Number(env.PAGE_SIZE ?? 999))),
    description:
      "Largest page body accepted, in bytes, counted while it streams; a larger one is refused unread as a malformed page (nothing stored, the next cycle retries). Default: `PAGE_SIZE` × 32 KiB + 1 MiB (shown for 999).",
    parse: integer(1024, 1 << 30),
  },
  {
    env: "PAGE_MEMORY_BYTES",
    key: "pageMemoryBytes",
    default: String(DEFAULT_PAGE_MEMORY_BYTES),
    description:
      "Bytes of Graph pages held in memory at once across every stream, slice and tenant of the process (fetched, checked or being stored); backfill and catch-up run only as many slices as two pages each fit (at least one per backfill). A slice's pages follow each other's nextLink, so slices are what overlap Graph's latency: the default runs two slices of real-sized pages (999 sign-ins, ~8 MB each). More makes a backfill against a slow Graph faster, at that much more memory (docs/benchmarks.md).",
    parse: integer(1024 * 1024, 1 << 30),
  },
  {
    env: "METRICS_PORT",
    key: "metricsPort",
    default: "9464",
    description:
      "Port of the HTTP listener for `/healthz`, `/readyz` and `/metrics` (Prometheus) in `run`; `0` turns it off.",
    parse: integer(0, 65535),
  },
  {
    env: "METRICS_HOST",
    key: "metricsHost",
    default: "0.0.0.0",
    description: "Address the metrics listener binds to (`127.0.0.1` to keep it local).",
    parse: (text) => (/^[0-9a-fA-F.:]+$|^localhost$/.test(text) ? ok(text) : bad("is not an IP address")),
  },
  {
    env: "READY_CYCLE_MULTIPLE",
    key: "readyCycleMultiple",
    default: "3",
    description: "`/readyz` fails when no cycle succeeded within this many schedule intervals (or since start).",
    parse: integer(1, 1000),
  },
  {
    env: "LOG_LEVEL",
    key: "logLevel",
    default: "info",
    description: "pino level: trace, debug, info, warn, error, fatal or silent.",
    parse: (text) =>
      ["trace", "debug", "info", "warn", "error", "fatal", "silent"].includes(text)
        ? ok(text)
        : bad("is not a level; use trace, debug, info, warn, error, fatal or silent"),
  },
  {
    env: "PROGRESS",
    key: "progress",
    default: "auto",
    description:
      "Progress of `once`, `backfill` and `import` as one line redrawn on stderr (events stored, windows or files done, rate, waits for the Graph throttle budget): `auto` when stderr is a terminal, `on`, or `off`.",
    parse: (text) =>
      ["auto", "on", "off"].includes(text.toLowerCase()) ? ok(text.toLowerCase()) : bad("is not auto, on or off"),
  },
  {
    env: "AZURE_STORAGE_CONNECTION_STRING",
    key: "storageConnectionString",
    optional: true,
    secret: true,
    fileVariant: true,
    description:
      "`import --from-blob CONTAINER[/PREFIX]`: the storage account holding diagnostic-settings archives, as the portal's connection string (`AccountName=…;AccountKey=…` or `BlobEndpoint=…;SharedAccessSignature=…`).",
    parse: storageConnectionString,
  },
  {
    env: "AZURE_STORAGE_ACCOUNT_KEY",
    key: "storageAccountKey",
    optional: true,
    secret: true,
    fileVariant: true,
    description:
      "`import https://<account>.blob.core.windows.net/<container>/…`: the account's key, for a URL without a SAS. Unset: Microsoft Entra ID (`DefaultAzureCredential`: managed identity, workload identity, `AZURE_CLIENT_ID`/`AZURE_CLIENT_SECRET`, `az login`) with a role such as Storage Blob Data Reader.",
    parse: (text) =>
      /^[A-Za-z0-9+/]+={0,2}$/.test(text.trim()) ? ok(text.trim()) : bad("is not an account key (base64)"),
  },
];

/** A storage connection string: `key=value` pairs naming the account or its blob endpoint. */
function storageConnectionString(text: string): Parsed {
  const keys = new Set(
    text
      .split(";")
      .filter((part) => part.includes("="))
      .map((part) => part.slice(0, part.indexOf("=")).trim().toLowerCase()),
  );
  if (keys.has("usedevelopmentstorage")) {
    return ok(text.trim());
  }
  if (!keys.has("accountname") && !keys.has("blobendpoint")) {
    return bad("names no AccountName or BlobEndpoint: copy it from the storage account's Access keys or SAS page");
  }
  return keys.has("accountkey") || keys.has("sharedaccesssignature")
    ? ok(text.trim())
    : bad("has no AccountKey or SharedAccessSignature");
}

export interface LoadOptions {
  /** `database`: the tenant settings (AZURE_*, STREAMS, …) are not read at all, e.g. `migrate` needs no Azure
   * credentials. */
  require?: "all" | "database";
}

const isTenantSetting = (s: Setting): boolean => s.tenant === true || s.credential !== undefined;

/** The variable names of a setting, with its `_FILE` variant, each under its tenants-file key. */
const namesOf = (s: Setting): Array<[key: string, env: string]> =>
  s.fileVariant
    ? [
        [s.key, s.env],
        [`${s.key}File`, `${s.env}_FILE`],
      ]
    : [[s.key, s.env]];

/** A tenants file's keys (camelCase) and the variable each stands for. */
const TENANT_KEYS: Record<string, string> = Object.fromEntries(CONFIG_SCHEMA.filter(isTenantSetting).flatMap(namesOf));
const CREDENTIAL_ENV = CONFIG_SCHEMA.filter((s) => s.credential !== undefined)
  .flatMap(namesOf)
  .map(([, env]) => env);
/** The variables that pick a credential: a problem with one means a credential was given, just not a valid one. */
const CREDENTIAL_KIND_ENV = CONFIG_SCHEMA.filter((s) => s.credential === "kind").map((s) => s.env);

/** Which credential the variables select; problems when none or several are given. */
function resolveAuth(
  values: Partial<TenantConfig> & Record<string, unknown>,
  problems: string[],
  where: string,
): AuthConfig {
  const given: AuthConfig[] = [];
  if (values.clientSecret !== undefined) {
    given.push({ kind: "secret", secret: values.clientSecret as string });
  }
  if (values.clientSecretFile !== undefined) {
    given.push({ kind: "secret-file", path: values.clientSecretFile as string });
  }
  if (values.clientCertificatePath !== undefined) {
    given.push({
      kind: "certificate",
      path: values.clientCertificatePath as string,
      password: values.clientCertificatePassword as string | undefined,
    });
  }
  if (values.federatedTokenFile !== undefined) {
    given.push({ kind: "federated", tokenFile: values.federatedTokenFile as string });
  }
  if (values.managedIdentity === true) {
    given.push({ kind: "managed-identity" });
  }
  const credentialVariableIsBad = problems.some((p) =>
    CREDENTIAL_KIND_ENV.some((name) => p.startsWith(`${where}${name}:`)),
  );
  if (given.length === 0) {
    if (!credentialVariableIsBad) {
      problems.push(
        `${where}no credential is set: set AZURE_CLIENT_SECRET (or AZURE_CLIENT_SECRET_FILE), AZURE_CLIENT_CERTIFICATE_PATH, AZURE_FEDERATED_TOKEN_FILE, or AZURE_MANAGED_IDENTITY=true`,
      );
    }
    return { kind: "none" };
  }
  if (given.length > 1) {
    problems.push(`${where}several credentials are set (${given.map((g) => g.kind).join(", ")}): keep exactly one`);
  }
  const auth = given[0] as AuthConfig;
  // An AZURE_CLIENT_ID that is set but invalid was reported already (by parseSettings); say it once.
  const clientIdIsBad = problems.some((p) => p.startsWith(`${where}AZURE_CLIENT_ID:`));
  if (auth.kind !== "managed-identity" && values.clientId === undefined && !clientIdIsBad) {
    problems.push(`${where}AZURE_CLIENT_ID is not set: Application (client) ID of the app registration, a GUID.`);
  }
  return auth;
}

function parseSettings(
  settings: readonly Setting[],
  env: Env,
  problems: string[],
  where: string,
): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const setting of settings) {
    let raw = env[setting.env];
    if (setting.fileVariant) {
      const fromFile = readFileVariant(setting, env, problems, where);
      if (fromFile === null) {
        values[setting.key] = undefined;
        continue;
      }
      raw = fromFile ?? raw;
    }
    const text = raw === undefined || raw === "" ? (setting.defaultFrom?.(env) ?? setting.default) : raw;
    if (text === undefined) {
      if (!setting.optional) {
        problems.push(`${where}${setting.env} is not set: ${setting.description}`);
      }
      values[setting.key] = setting.optional ? undefined : "";
      continue;
    }
    const parsed = setting.parse(text);
    if (parsed.ok) {
      values[setting.key] = parsed.value;
    } else {
      const shown = setting.secret ? "the value given" : JSON.stringify(text);
      problems.push(`${where}${setting.env}: ${shown} ${parsed.problem}`);
    }
  }
  return values;
}

function tenantFrom(values: Record<string, unknown>, problems: string[], where: string): TenantConfig {
  return {
    tenantId: values.tenantId as string,
    name: (values.name as string | undefined) ?? (values.tenantId as string),
    clientId: values.clientId as string | undefined,
    auth: resolveAuth(values, problems, where),
    authorityHost: values.authorityHost as string,
    graphEndpoint: values.graphEndpoint as string,
    streams: values.streams as StreamName[],
    interactiveApiVersion: values.interactiveApiVersion as InteractiveApiVersion,
  };
}

/** Reads TENANTS_FILE (JSON or YAML) into one env-like record per tenant: file values over `defaults` over env. */
function tenantEnvs(path: string, env: Env, problems: string[]): Array<{ where: string; env: Env }> {
  let doc: unknown;
  try {
    // Loaded only here: a configuration without TENANTS_FILE never needs a YAML parser in memory.
    const yaml = createRequire(import.meta.url)("yaml") as typeof import("yaml");
    doc = yaml.parse(readFileSync(path, "utf8"));
  } catch (error) {
    problems.push(`TENANTS_FILE: ${path} is not valid JSON or YAML (${(error as Error).message.split("\n")[0]})`);
    return [];
  }
  const { defaults = {}, tenants } = (doc ?? {}) as { defaults?: unknown; tenants?: unknown };
  if (!Array.isArray(tenants) || tenants.length === 0) {
    problems.push(
      `TENANTS_FILE: ${path} needs a non-empty "tenants" list, e.g. tenants: [{ tenantId: …, clientId: … }]`,
    );
    return [];
  }
  const toEnv = (entry: unknown, where: string): Env => {
    const out: Env = {};
    if (entry === null || typeof entry !== "object" || Array.isArray(entry)) {
      problems.push(`${where}must be an object of settings`);
      return out;
    }
    for (const [key, value] of Object.entries(entry)) {
      const name = TENANT_KEYS[key];
      if (name === undefined) {
        problems.push(`${where}unknown key "${key}"; use ${Object.keys(TENANT_KEYS).join(", ")}`);
        continue;
      }
      out[name] = Array.isArray(value) ? value.join(",") : String(value);
    }
    return out;
  };
  // A level that names any credential replaces every inherited credential variable.
  const layer = (base: Env, over: Env): Env => {
    const merged = { ...base };
    if (CREDENTIAL_ENV.some((name) => over[name] !== undefined)) {
      for (const name of CREDENTIAL_ENV) {
        delete merged[name];
      }
    }
    return { ...merged, ...over };
  };
  const base = layer(env, toEnv(defaults, "TENANTS_FILE defaults: "));
  return tenants.map((entry, i) => {
    const id = (entry as { tenantId?: unknown } | null)?.tenantId;
    const where = `TENANTS_FILE tenants[${i}]${typeof id === "string" ? ` (${id})` : ""}: `;
    return { where, env: layer(base, toEnv(entry, where)) };
  });
}

/** Parses and validates the whole configuration; throws one ConfigError listing every problem. */
export function loadConfig(env: Env, options: LoadOptions = {}): Config {
  const problems: string[] = [];
  const needAzure = options.require !== "database";
  const globalSettings = CONFIG_SCHEMA.filter((s) => !isTenantSetting(s));
  const tenantSettings = CONFIG_SCHEMA.filter(isTenantSetting);
  const config = parseSettings(globalSettings, env, problems, "") as unknown as Config;
  const tenants: TenantConfig[] = [];
  if (needAzure) {
    const sources =
      config.tenantsFile !== undefined ? tenantEnvs(config.tenantsFile, env, problems) : [{ where: "", env }];
    for (const source of sources) {
      const values = parseSettings(tenantSettings, source.env, problems, source.where);
      tenants.push(tenantFrom(values, problems, source.where));
    }
    const seen = new Set<string>();
    for (const t of tenants) {
      if (t.tenantId && seen.has(t.tenantId)) {
        problems.push(`TENANTS_FILE: tenant ${t.tenantId} is listed twice`);
      }
      seen.add(t.tenantId);
    }
  }
  config.tenants = tenants;
  if (config.databaseUrl === undefined && typeof config.dataDir === "string") {
    const problem = dataDirProblem(config.dataDir);
    if (problem !== undefined) {
      problems.push(`DATA_DIR: ${JSON.stringify(config.dataDir)} ${problem}`);
    }
  }
  if (problems.length === 0 && config.overlapMs >= config.maxWindowMs) {
    problems.push("OVERLAP must be shorter than MAX_WINDOW, or a long gap could never advance");
  }
  if (problems.length === 0 && config.leaseHeartbeatMs * 3 > config.leaseTtlMs) {
    problems.push("LEASE_HEARTBEAT must be at most a third of LEASE_TTL, so a lease survives a missed heartbeat");
  }
  if (problems.length > 0) {
    throw new ConfigError(problems);
  }
  return Object.freeze(config);
}

/**
 * The configuration of a command, by what it needs of the tenants: `required` (Graph credentials must be valid),
 * `none` (database settings only), or `optional` (import, export, status: the tenants when they are configured,
 * else the database settings alone and AZURE_TENANT_ID, if set, as the one tenant id).
 */
export function loadCommandConfig(
  env: Env,
  tenants: "required" | "optional" | "none",
): { config: Config; tenantIds: string[] } {
  if (tenants !== "optional") {
    const config = loadConfig(env, { require: tenants === "required" ? "all" : "database" });
    return { config, tenantIds: config.tenants.map((t) => t.tenantId) };
  }
  try {
    const config = loadConfig(env);
    return { config, tenantIds: config.tenants.map((t) => t.tenantId) };
  } catch (error) {
    if (!(error instanceof ConfigError)) {
      throw error;
    }
    const config = loadConfig(env, { require: "database" });
    const id = env.AZURE_TENANT_ID?.trim().toLowerCase() ?? "";
    return { config, tenantIds: id === "" ? [] : [id] };
  }
}

/** The configuration table for the README, generated from CONFIG_SCHEMA. */
export function configTableMarkdown(): string {
  const rows = CONFIG_SCHEMA.flatMap((s) => {
    const def = s.default !== undefined ? `\`${s.default}\`` : s.optional ? "(unset)" : "**required**";
    const row = `| \`${s.env}\` | ${def} | ${s.description.replace(/\|/g, "\\|")} |`;
    return s.fileVariant
      ? [
          row,
          `| \`${s.env}_FILE\` | (unset) | A file holding \`${s.env}\` (Docker/Kubernetes secrets), read once at start and trimmed; set one of the two, not both. |`,
        ]
      : [row];
  });
  return ["| Variable | Default | Meaning |", "| --- | --- | --- |", ...rows].join("\n");
}
