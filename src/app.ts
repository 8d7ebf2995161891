// Builds the daemon's parts from a Config: the database (external or embedded), one Graph client per tenant (one
// shared budget and connection pool), and the runner of their cycles (src/ingest/targets.ts). Production commands
// and tests build the ingester here, the one wiring.

import type { Dispatcher } from "undici";

import type { Config, TenantConfig } from "./config.ts";
import { streamSpec } from "./events/streams.ts";
import { GraphBudget } from "./graph/budget.ts";
import { GraphClient } from "./graph/client.ts";
import { GraphClock } from "./graph/clock.ts";
import {
  certificateFields,
  type CredentialFields,
  federatedFields,
  secretFields,
  secretFileFields,
} from "./graph/credentials.ts";
import { createAgent, type HttpSettings } from "./graph/http.ts";
import { ClientCredentialsTokenProvider, ManagedIdentityTokenProvider, type TokenProvider } from "./graph/token.ts";
import { PageBudget } from "./ingest/page-budget.ts";
import type { ReaderDeps } from "./ingest/reader.ts";
import { type Target, type TargetOutcome, targetRunner } from "./ingest/targets.ts";
import type { Logger } from "./log.ts";
import { type Metrics, NO_HTTP_OBSERVER } from "./metrics.ts";
import { registerUrlSecrets } from "./redact.ts";
import { cancelsSent, createPool, type Pool, waitForDatabase } from "./store/db.ts";
import { startEmbeddedPostgres } from "./store/embedded.ts";
import type { StreamLeases } from "./store/leases.ts";
import { migrate } from "./store/migrate.ts";
import { type Clock, systemClock } from "./time.ts";

export interface Database {
  url: string;
  pool: Pool;
  embedded: boolean;
  close(): Promise<void>;
}

/** How long closing the database waits for its connections to confirm they closed. */
const POOL_END_WAIT_MS = 5000;

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
    log.info(
      { dataDir: config.dataDir, port: embedded.port, origin: embedded.origin },
      "embedded PostgreSQL running (DATABASE_URL is unset)",
    );
    if (embedded.notice) {
      log.warn({ dataDir: config.dataDir }, embedded.notice);
    }
    url = embedded.url;
    stopEmbedded = embedded.stop;
  }
  const pool = createPool(url, log, {
    statementTimeoutMs: config.dbStatementTimeoutMs,
    lockTimeoutMs: config.dbLockTimeoutMs,
    idleInTransactionTimeoutMs: config.dbIdleInTransactionTimeoutMs,
  });
  let closed: Promise<void> | undefined;
  const close = () =>
    (closed ??= (async () => {
      // pool.end() waits for every connection to close, which a vanished server may never confirm.
      // Cancels of aborted queries are delivered first: a backend waiting for a lock does not notice its client left.
      const ended = pool.end().catch((err: unknown) => log.warn({ err }, "closing the pool failed"));
      await Promise.race([
        Promise.all([ended, cancelsSent()]),
        new Promise((resolve) => setTimeout(resolve, POOL_END_WAIT_MS).unref()),
      ]);
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
  /** Every configured (tenant, stream) pair. */
  targets: Target[];
  /** The tenant's Graph client (`check` asks Graph through it). */
  graphFor(tenantId: string): GraphClient;
  /**
   * What a reader of `tenantId` needs (the one wiring: page size, MAX_PAGES_PER_WINDOW, metrics, the process's page
   * budget), for the tail cycles, sweeps and backfill.
   */
  readerDepsFor(tenantId: string): ReaderDeps;
  /** `run` and `once`: one cycle of every target this replica holds (src/ingest/targets.ts). */
  runAll: (signal: AbortSignal) => Promise<TargetOutcome[]>;
  /** Waits for background sweeps, then closes the Graph connection pool (unless it was passed in). */
  close(): Promise<void>;
}

/** The Graph side (one client per tenant, one shared budget and connection pool) and the runner of the cycles. */
export function createIngester(
  config: Config,
  db: Pool,
  log: Logger,
  options: {
    clock?: Clock;
    dispatcher?: Dispatcher;
    metrics?: Metrics;
    leases?: StreamLeases;
    budget?: GraphBudget;
    /** `run`: sweeps run beside the schedule; `once` (default): after the tail, before returning. */
    sweepsInBackground?: boolean;
  } = {},
): Ingester {
  const clock = options.clock ?? systemClock;
  registerUrlSecrets(config.databaseUrl);
  const settings = httpSettings(config);
  const dispatcher = options.dispatcher ?? createAgent(settings);
  const metrics = options.metrics;
  const observer = metrics ?? NO_HTTP_OBSERVER;
  const onRenewal = metrics ? () => metrics.tokenRenewals.inc() : undefined;
  const budget = options.budget ?? budgetFor(config);
  const clients = new Map<string, GraphClient>();
  for (const tenant of config.tenants) {
    const tenantLog = log.child({ tenant_id: tenant.tenantId });
    const graphClock = new GraphClock(clock, undefined, {
      log: tenantLog,
      ...(metrics ? { onIgnored: () => metrics.graphDateIgnored.inc({ tenant_id: tenant.tenantId }) } : {}),
    });
    const scope = `${tenant.graphEndpoint}/.default`;
    const tokens: TokenProvider =
      tenant.auth.kind === "managed-identity"
        ? new ManagedIdentityTokenProvider({ scope, clientId: tenant.clientId, ...(onRenewal ? { onRenewal } : {}) })
        : new ClientCredentialsTokenProvider(
            {
              authorityHost: tenant.authorityHost,
              tenantId: tenant.tenantId,
              clientId: tenant.clientId ?? "",
              fields: credentialFields(tenant),
              scope,
            },
            { dispatcher, settings, clock: graphClock, log: tenantLog, observer, ...(onRenewal ? { onRenewal } : {}) },
          );
    const graph = new GraphClient(tenant.graphEndpoint, {
      budget: { budget, tenantId: tenant.tenantId, appId: tenant.clientId ?? "managed-identity" },
      tokens,
      dispatcher,
      settings,
      clock: graphClock,
      log: tenantLog,
      observer,
    });
    clients.set(tenant.tenantId, graph);
  }
  const targets = config.tenants.flatMap((tenant) =>
    tenant.streams.map((name) => ({ tenant, stream: streamSpec(name, tenant.interactiveApiVersion) })),
  );
  const graphFor = (tenantId: string): GraphClient => {
    const graph = clients.get(tenantId);
    if (!graph) {
      throw new Error(`unknown tenant ${tenantId}`);
    }
    return graph;
  };
  // One budget for the process: every tenant's, stream's and slice's pages (src/ingest/page-budget.ts).
  const pageBudget = new PageBudget(config.pageMemoryBytes);
  const readerDepsFor = (tenantId: string): ReaderDeps => {
    const graph = graphFor(tenantId);
    return {
      pageBudget,
      db,
      graph,
      clock,
      tenantId,
      graphEndpoint: graph.endpoint,
      pageSize: config.pageSize,
      maxPagesPerWindow: config.maxPagesPerWindow,
      ...(metrics ? { metrics } : {}),
    };
  };
  const runner = targetRunner({
    config,
    db,
    log,
    clock,
    targets,
    graphFor,
    readerDepsFor,
    ...(options.leases ? { leases: options.leases } : {}),
    ...(metrics ? { metrics } : {}),
    ...(options.sweepsInBackground ? { sweepsInBackground: true } : {}),
  });
  return {
    targets,
    graphFor,
    readerDepsFor,
    runAll: (signal) => runner.runAll(signal),
    close: async () => {
      await runner.close();
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

/** The credential fields for the tenant's secret, secret file, certificate or federated token. */
function credentialFields(tenant: TenantConfig): CredentialFields {
  const auth = tenant.auth;
  switch (auth.kind) {
    case "secret":
      return secretFields(auth.secret);
    case "secret-file":
      return secretFileFields(auth.path);
    case "certificate":
      return certificateFields(auth.path, auth.password, tenant.clientId ?? "");
    case "federated":
      return federatedFields(auth.tokenFile);
    default:
      throw new Error(`no client-credentials form for ${auth.kind}`);
  }
}
