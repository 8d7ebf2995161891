// Builds the daemon's parts from a Config: the database (external or embedded), the Graph client, and one cycle.

import type { Dispatcher } from "undici";

import type { Config } from "./config.ts";
import { GraphBudget } from "./graph/budget.ts";
import { GraphClient } from "./graph/client.ts";
import { GraphClock } from "./graph/clock.ts";
import { createAgent, type HttpSettings } from "./graph/http.ts";
import {
  certificateFields,
  type CredentialFields,
  federatedFields,
  secretFields,
  secretFileFields,
} from "./graph/credentials.ts";
import { ClientCredentialsTokenProvider, ManagedIdentityTokenProvider, type TokenProvider } from "./graph/token.ts";
import { LockedElsewhereError } from "./errors.ts";
import { type CycleResult, INTERACTIVE_STREAM, runCycle } from "./ingest/cycle.ts";
import type { Logger } from "./log.ts";
import { type Metrics, NO_HTTP_OBSERVER } from "./metrics.ts";
import { createPool, type Pool, waitForDatabase } from "./store/db.ts";
import { startEmbeddedPostgres } from "./store/embedded.ts";
import type { StreamLocks } from "./store/locks.ts";
import { migrate } from "./store/migrate.ts";
import { type Clock, systemClock } from "./time.ts";

export interface Database {
  url: string;
  pool: Pool;
  embedded: boolean;
  close(): Promise<void>;
}

/** Connects to DATABASE_URL, or starts the embedded PostgreSQL under DATA_DIR; waits until it answers. */
export async function openDatabase(config: Config, log: Logger, signal?: AbortSignal): Promise<Database> {
  let url = config.databaseUrl;
  let stopEmbedded: (() => Promise<void>) | undefined;
  if (url === undefined) {
    const embedded = await startEmbeddedPostgres({
      dir: config.dataDir,
      port: config.embeddedPgPort,
      onLog: (line) => log.trace({ postgres: line.trim() }, "embedded postgres"),
    });
    log.info({ dataDir: config.dataDir, port: embedded.port }, "embedded PostgreSQL running (DATABASE_URL is unset)");
    url = embedded.url;
    stopEmbedded = embedded.stop;
  }
  const pool = createPool(url, log);
  let closed: Promise<void> | undefined;
  const close = () =>
    (closed ??= (async () => {
      await pool.end().catch((err: unknown) => log.warn({ err }, "closing the pool failed"));
      await stopEmbedded?.();
    })());
  try {
    await waitForDatabase(pool, { timeoutMs: config.databaseWaitMs, log, ...(signal ? { signal } : {}) });
  } catch (error) {
    await close();
    throw error;
  }
  return { url, pool, embedded: stopEmbedded !== undefined, close };
}

export async function applyMigrations(database: Database, log: Logger): Promise<string[]> {
  return migrate(database.url, log);
}

export function httpSettings(config: Config): HttpSettings {
  return {
    httpTimeoutMs: config.httpTimeoutMs,
    maxRetries: config.maxRetries,
    retryBaseDelayMs: config.retryBaseDelayMs,
    maxRetryAfterMs: config.maxRetryAfterMs,
    maxPageBytes: config.maxPageBytes,
  };
}

export interface Ingester {
  graph: GraphClient;
  tokens: TokenProvider & { renewals: number };
  runOnce: (signal: AbortSignal) => Promise<CycleResult>;
  close(): Promise<void>;
}

/** The Graph side and a `runOnce` bound to one tenant and the interactive stream. */
export function createIngester(
  config: Config,
  db: Pool,
  log: Logger,
  options: {
    clock?: Clock;
    dispatcher?: Dispatcher;
    metrics?: Metrics;
    locks?: StreamLocks;
    budget?: GraphBudget;
  } = {},
): Ingester {
  const clock = options.clock ?? systemClock;
  const settings = httpSettings(config);
  const dispatcher = options.dispatcher ?? createAgent(settings);
  const graphClock = new GraphClock(clock);
  const metrics = options.metrics;
  const observer = metrics ?? NO_HTTP_OBSERVER;
  const onRenewal = metrics ? () => metrics.tokenRenewals.inc() : undefined;
  const scope = `${config.graphEndpoint}/.default`;
  const tokens =
    config.auth.kind === "managed-identity"
      ? new ManagedIdentityTokenProvider({ scope, clientId: config.clientId, ...(onRenewal ? { onRenewal } : {}) })
      : new ClientCredentialsTokenProvider(
          {
            authorityHost: config.authorityHost,
            tenantId: config.tenantId,
            clientId: config.clientId ?? "",
            fields: credentialFields(config),
            scope,
          },
          { dispatcher, settings, clock: graphClock, log, observer, ...(onRenewal ? { onRenewal } : {}) },
        );
  const budget = options.budget ?? budgetFor(config);
  const graph = new GraphClient(config.graphEndpoint, {
    budget: { budget, tenantId: config.tenantId, appId: config.clientId ?? "managed-identity" },
    tokens,
    dispatcher,
    settings,
    clock: graphClock,
    log,
    observer,
  });
  return {
    graph,
    tokens,
    runOnce: async (signal) => {
      const stream = INTERACTIVE_STREAM.name;
      if (options.locks && !(await options.locks.tryAcquire(config.tenantId, stream))) {
        throw new LockedElsewhereError(`another replica holds the lock of ${config.tenantId}/${stream}`);
      }
      return runCycle({
        db,
        graph,
        log,
        clock,
        settings: config,
        tenantId: config.tenantId,
        signal,
        ...(metrics ? { metrics } : {}),
      });
    },
    close: async () => {
      if (!options.dispatcher) {
        await dispatcher.close();
      }
    },
  };
}

export function budgetFor(config: Config): GraphBudget {
  return new GraphBudget({
    perTenant: config.budgetPerTenant,
    perApp: config.budgetPerApp,
    windowMs: config.budgetWindowMs,
    reserve: config.budgetPerTenant > 1 ? 1 : 0,
  });
}

/** The credential fields for the configured secret, secret file, certificate or federated token. */
export function credentialFields(config: Config): CredentialFields {
  const auth = config.auth;
  switch (auth.kind) {
    case "secret":
      return secretFields(auth.secret);
    case "secret-file":
      return secretFileFields(auth.path);
    case "certificate":
      return certificateFields(auth.path, auth.password, config.clientId ?? "");
    case "federated":
      return federatedFields(auth.tokenFile);
    default:
      throw new Error(`no client-credentials form for ${auth.kind}`);
  }
}
