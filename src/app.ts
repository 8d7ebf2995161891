// Builds the daemon's parts from a Config: the database (external or embedded), the Graph client, and one cycle.

import type { Dispatcher } from "undici";

import type { Config, TenantConfig } from "./config.ts";
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
import { type CycleResult, runCycle, type StreamSpec } from "./ingest/cycle.ts";
import { STREAMS } from "./ingest/streams.ts";
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

/** One (tenant, stream) pair: the unit of checkpoints, locks and cycles. */
export interface Target {
  tenant: TenantConfig;
  stream: StreamSpec;
}

export interface TargetOutcome {
  target: Target;
  result?: CycleResult;
  error?: Error;
  /** Another replica polls this target. */
  standby?: boolean;
}

export interface Ingester {
  targets: Target[];
  /** The first tenant's Graph client and tokens (single-tenant use and tests). */
  graph: GraphClient;
  tokens: TokenProvider & { renewals: number };
  graphFor(tenantId: string): GraphClient;
  /** One cycle of the first target (single tenant, first stream). */
  runOnce: (signal: AbortSignal) => Promise<CycleResult>;
  runTarget: (target: Target, signal: AbortSignal) => Promise<CycleResult>;
  /**
   * One cycle of every target this replica holds (see StreamLocks.rebalance), TENANT_CONCURRENCY at a time. One
   * target's failure never stops the others; each outcome is returned.
   */
  runAll: (signal: AbortSignal) => Promise<TargetOutcome[]>;
  close(): Promise<void>;
}

interface TenantClient {
  graph: GraphClient;
  tokens: TokenProvider & { renewals: number };
}

/** The Graph side (one client per tenant, one shared budget and connection pool) and the cycle runners. */
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
  const metrics = options.metrics;
  const observer = metrics ?? NO_HTTP_OBSERVER;
  const onRenewal = metrics ? () => metrics.tokenRenewals.inc() : undefined;
  const budget = options.budget ?? budgetFor(config);
  const clients = new Map<string, TenantClient>();
  for (const tenant of config.tenants) {
    const tenantLog = log.child({ tenant_id: tenant.tenantId });
    const graphClock = new GraphClock(clock);
    const scope = `${tenant.graphEndpoint}/.default`;
    const tokens =
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
    clients.set(tenant.tenantId, { graph, tokens });
  }
  const targets = config.tenants.flatMap((tenant) => tenant.streams.map((name) => ({ tenant, stream: STREAMS[name] })));
  const first = clients.get(config.tenants[0]?.tenantId ?? "");
  const clientFor = (tenantId: string): TenantClient => {
    const client = clients.get(tenantId);
    if (!client) {
      throw new Error(`unknown tenant ${tenantId}`);
    }
    return client;
  };
  const runTarget = (target: Target, signal: AbortSignal) =>
    runCycle({
      db,
      graph: clientFor(target.tenant.tenantId).graph,
      log,
      clock,
      settings: config,
      tenantId: target.tenant.tenantId,
      stream: target.stream,
      signal,
      ...(metrics ? { metrics } : {}),
    });
  return {
    targets,
    graph: first?.graph as GraphClient,
    tokens: first?.tokens as TokenProvider & { renewals: number },
    graphFor: (tenantId) => clientFor(tenantId).graph,
    runTarget,
    runOnce: async (signal) => {
      const target = targets[0];
      if (!target) {
        throw new Error("no tenant is configured");
      }
      if (options.locks && !(await options.locks.tryAcquire(target.tenant.tenantId, target.stream.name))) {
        throw new LockedElsewhereError(
          `another replica holds the lock of ${target.tenant.tenantId}/${target.stream.name}`,
        );
      }
      return runTarget(target, signal);
    },
    runAll: async (signal) => {
      const mine = options.locks ? await options.locks.rebalance(targets) : targets;
      const outcomes: TargetOutcome[] = targets
        .filter((t) => !mine.includes(t))
        .map((target) => ({ target, standby: true }));
      let next = 0;
      const worker = async () => {
        while (next < mine.length && !signal.aborted) {
          const target = mine[next++] as Target;
          try {
            outcomes.push({ target, result: await runTarget(target, signal) });
          } catch (error) {
            outcomes.push({ target, error: error as Error });
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(config.tenantConcurrency, mine.length) }, worker));
      return outcomes;
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

/** The credential fields for the tenant's secret, secret file, certificate or federated token. */
export function credentialFields(tenant: TenantConfig): CredentialFields {
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
