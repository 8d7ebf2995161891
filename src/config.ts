// The one place that reads configuration: every variable is declared once here (name, default, meaning, parser),
// parsed and checked together, and every problem is reported in one message. The README's table is generated from
// CONFIG_SCHEMA (`node src/cli.ts config-doc`), and a test fails when they drift.

import cron from "node-cron";

import { ConfigError } from "./errors.ts";
import { formatDuration, parseDuration } from "./time.ts";

export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "silent";

export interface Config {
  databaseUrl: string | undefined;
  dataDir: string;
  embeddedPgPort: number;
  databaseWaitMs: number;
  tenantId: string;
  clientId: string;
  clientSecret: string;
  authorityHost: string;
  graphEndpoint: string;
  pollSchedule: string;
  initialLookbackMs: number;
  overlapMs: number;
  settleMs: number;
  maxWindowMs: number;
  retentionMs: number;
  pageSize: number;
  httpTimeoutMs: number;
  maxRetries: number;
  retryBaseDelayMs: number;
  maxRetryAfterMs: number;
  cycleDeadlineMs: number;
  maxPageBytes: number;
  metricsPort: number;
  metricsHost: string;
  readyCycleMultiple: number;
  logLevel: LogLevel;
}

type Env = Record<string, string | undefined>;
type Parsed = { ok: true; value: unknown } | { ok: false; problem: string };

interface Setting {
  /** Environment variable name. */
  env: string;
  key: keyof Config;
  /** Default as written in the environment; undefined = required (unless `optional`). */
  default?: string;
  optional?: boolean;
  secret?: boolean;
  description: string;
  parse(text: string): Parsed;
}

const ok = (value: unknown): Parsed => ({ ok: true, value });
const bad = (problem: string): Parsed => ({ ok: false, problem });

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

export const CONFIG_SCHEMA: readonly Setting[] = [
  {
    env: "DATABASE_URL",
    key: "databaseUrl",
    optional: true,
    secret: true,
    description:
      "PostgreSQL connection string (`postgres://user:pass@host:5432/db`; `PG*` variables and `sslmode` are honoured). Unset: an embedded PostgreSQL is started under `DATA_DIR`.",
    parse: (text) =>
      /^postgres(ql)?:\/\//.test(text) ? ok(text) : bad("does not start with postgres:// or postgresql://"),
  },
  {
    env: "DATA_DIR",
    key: "dataDir",
    default: "./data",
    description: "Where the embedded PostgreSQL keeps its files when `DATABASE_URL` is unset.",
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
    env: "AZURE_TENANT_ID",
    key: "tenantId",
    description: "Directory (tenant) ID of the Entra ID tenant, a GUID (or its primary domain).",
    parse: (text) =>
      GUID.test(text) || DOMAIN.test(text)
        ? ok(text.toLowerCase())
        : bad("is not a tenant GUID or domain; copy the Directory (tenant) ID from the app registration"),
  },
  {
    env: "AZURE_CLIENT_ID",
    key: "clientId",
    description: "Application (client) ID of the app registration, a GUID.",
    parse: (text) =>
      GUID.test(text)
        ? ok(text.toLowerCase())
        : bad("is not a GUID; copy the Application (client) ID from the app registration"),
  },
  {
    env: "AZURE_CLIENT_SECRET",
    key: "clientSecret",
    secret: true,
    description: "Client secret value of the app registration (never logged).",
    parse: (text) =>
      text.trim() === text ? ok(text) : bad("has leading or trailing whitespace; paste the secret value exactly"),
  },
  {
    env: "AZURE_AUTHORITY_HOST",
    key: "authorityHost",
    default: "https://login.microsoftonline.com",
    description: "OAuth2 authority. `http://` only for loopback hosts (the simulator).",
    parse: httpsUrl,
  },
  {
    env: "GRAPH_ENDPOINT",
    key: "graphEndpoint",
    default: "https://graph.microsoft.com",
    description:
      "Microsoft Graph origin; the token scope is `{GRAPH_ENDPOINT}/.default`. `http://` only for loopback hosts.",
    parse: httpsUrl,
  },
  {
    env: "POLL_SCHEDULE",
    key: "pollSchedule",
    default: "*/5 * * * *",
    description: "Cron expression (UTC) for cycles in `run`.",
    parse: (text) =>
      cron.validate(text) ? ok(text) : bad("is not a valid cron expression; write it like */5 * * * *"),
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
    description: "Retries of one request after 429, 5xx, timeouts or connection resets before the cycle fails.",
    parse: integer(0, 100),
  },
  {
    env: "RETRY_BASE_DELAY",
    key: "retryBaseDelayMs",
    default: "5s",
    description: "First backoff delay when Graph gives no Retry-After; doubles per attempt (with jitter) up to 2m.",
    parse: duration(1, 600_000),
  },
  {
    env: "MAX_RETRY_AFTER",
    key: "maxRetryAfterMs",
    default: "5m",
    description: "Longest Retry-After honoured; larger values are clamped to it.",
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
    default: "67108864",
    description: "Largest page body accepted, in bytes; a larger one fails the request.",
    parse: integer(1024, 1 << 30),
  },
  {
    env: "METRICS_PORT",
    key: "metricsPort",
    default: "9464",
    description: "Port of the HTTP listener for `/healthz`, `/readyz` and `/metrics` (Prometheus) in `run`; `0` turns it off.",
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
];

export interface LoadOptions {
  /** Only these variables are required (others may be missing), e.g. `migrate` needs no Azure credentials. */
  require?: "all" | "database";
}

const AZURE_KEYS = new Set<keyof Config>(["tenantId", "clientId", "clientSecret"]);

/** Parses and validates the whole configuration; throws one ConfigError listing every problem. */
export function loadConfig(env: Env, options: LoadOptions = {}): Config {
  const problems: string[] = [];
  const values: Record<string, unknown> = {};
  for (const setting of CONFIG_SCHEMA) {
    const raw = env[setting.env];
    const text = raw === undefined || raw === "" ? setting.default : raw;
    if (text === undefined) {
      const needed = options.require !== "database" || !AZURE_KEYS.has(setting.key);
      if (!setting.optional && needed) {
        problems.push(`${setting.env} is not set: ${setting.description}`);
      }
      values[setting.key] = setting.optional ? undefined : "";
      continue;
    }
    const parsed = setting.parse(text);
    if (parsed.ok) {
      values[setting.key] = parsed.value;
    } else {
      const shown = setting.secret ? "the value given" : JSON.stringify(text);
      problems.push(`${setting.env}: ${shown} ${parsed.problem}`);
    }
  }
  const config = values as unknown as Config;
  if (problems.length === 0 && config.overlapMs >= config.maxWindowMs) {
    problems.push("OVERLAP must be shorter than MAX_WINDOW, or a long gap could never advance");
  }
  if (problems.length > 0) {
    throw new ConfigError(problems);
  }
  return Object.freeze(config);
}

/** The configuration table for the README, generated from CONFIG_SCHEMA. */
export function configTableMarkdown(): string {
  const rows = CONFIG_SCHEMA.map((s) => {
    const def = s.default !== undefined ? `\`${s.default}\`` : s.optional ? "(unset)" : "**required**";
    return `| \`${s.env}\` | ${def} | ${s.description.replace(/\|/g, "\\|")} |`;
  });
  return ["| Variable | Default | Meaning |", "| --- | --- | --- |", ...rows].join("\n");
}
