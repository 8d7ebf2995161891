// Builds the daemon's parts from a Config: the database (external or embedded), the Graph client, and one cycle.

import type { Dispatcher } from "undici";

import type { Config, SweepTier, TenantConfig } from "./config.ts";
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
import { EXIT, type ExitCode, exitCodeFor, LockedElsewhereError } from "./errors.ts";
import { type CycleResult, runCycle, type StreamSpec } from "./ingest/cycle.ts";
import type { ReaderDeps } from "./ingest/reader.ts";
import { streamSpec } from "./events/streams.ts";
import { dueSweeps, lastSweeps, RECORD_SWEEP, runSweep, sweepWindow } from "./ingest/sweeps.ts";
import { earliestTailCoverage, freshlyCovered } from "./store/coverage.ts";
import type { Logger } from "./log.ts";
import { type Metrics, NO_HTTP_OBSERVER } from "./metrics.ts";
import { registerUrlSecrets } from "./redact.ts";
import { cancelsSent, createPool, type Pool, waitForDatabase, withQueryAbort } from "./store/db.ts";
import { startEmbeddedPostgres } from "./store/embedded.ts";
import type { LeaseHolder, StreamLeases } from "./store/leases.ts";
import { migrate } from "./store/migrate.ts";
import { type Clock, systemClock } from "./time.ts";

export interface Database {
  url: string;
  pool: Pool;
  embedded: boolean;
  close(): Promise<void>;
}

/** How long closing the database waits for its connections to confirm they closed. */
export const POOL_END_WAIT_MS = 5000;

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

/** One (tenant, stream) pair: the unit of checkpoints, locks and cycles. */
export interface Target {
  tenant: TenantConfig;
  stream: StreamSpec;
}

export interface TargetOutcome {
  target: Target;
  result?: CycleResult;
  error?: Error;
  /** Not polled by this replica: another replica holds its lease (`holder`), or it is free beyond our fair share. */
  standby?: boolean;
  holder?: LeaseHolder;
}

export interface Ingester {
  targets: Target[];
  /** The first tenant's Graph client and tokens (single-tenant use and tests). */
  graph: GraphClient;
  tokens: TokenProvider & { renewals: number };
  graphFor(tenantId: string): GraphClient;
  /** What a reader of `tenantId` needs (the one wiring: page size, MAX_PAGES_PER_WINDOW, metrics), for backfill. */
  readerDepsFor(tenantId: string): ReaderDeps;
  /** One cycle of the first target (single tenant, first stream). */
  runOnce: (signal: AbortSignal) => Promise<CycleResult>;
  runTarget: (target: Target, signal: AbortSignal) => Promise<CycleResult>;
  /**
   * One cycle of every target this replica holds (see StreamLeases.share), TENANT_CONCURRENCY at a time. One
   * target's failure never stops the others; each outcome is returned, skipped targets too.
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
  const clients = new Map<string, TenantClient>();
  for (const tenant of config.tenants) {
    const tenantLog = log.child({ tenant_id: tenant.tenantId });
    const graphClock = new GraphClock(clock, undefined, {
      log: tenantLog,
      ...(metrics ? { onIgnored: () => metrics.graphDateIgnored.inc({ tenant_id: tenant.tenantId }) } : {}),
    });
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
  const targets = config.tenants.flatMap((tenant) =>
    tenant.streams.map((name) => ({ tenant, stream: streamSpec(name, tenant.interactiveApiVersion) })),
  );
  const first = clients.get(config.tenants[0]?.tenantId ?? "");
  const clientFor = (tenantId: string): TenantClient => {
    const client = clients.get(tenantId);
    if (!client) {
      throw new Error(`unknown tenant ${tenantId}`);
    }
    return client;
  };
  const readerDepsFor = (tenantId: string): ReaderDeps => {
    const graph = clientFor(tenantId).graph;
    return {
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
  const readerFor = (target: Target): ReaderDeps => readerDepsFor(target.tenant.tenantId);
  const sweeping = new Map<string, Promise<void>>();
  /** Starts the due sweep tier of a target, if any (see ingest/sweeps.ts). */
  const sweep = async (target: Target, checkpoint: Date | undefined, signal: AbortSignal): Promise<void> => {
    const key = `${target.tenant.tenantId}/${target.stream.name}`;
    if (config.sweeps.length === 0 || sweeping.has(key)) {
      return;
    }
    const reader = readerFor(target);
    const now = reader.graph.clock.now();
    const due = dueSweeps(config.sweeps, await lastSweeps(db, reader.tenantId, target.stream.name), now);
    const tier = due[0];
    const earliest = await earliestTailCoverage(db, reader.tenantId, target.stream.name);
    if (!tier || !checkpoint || !earliest) {
      return;
    }
    const window = sweepWindow(tier, now, new Date(checkpoint.getTime() - config.overlapMs), earliest);
    // The longest due tier is read; the shorter due ones are inside it and are recorded as done with it.
    const markDone = async (tiers: readonly SweepTier[], w: { from: Date; to: Date }) => {
      for (const t of tiers) {
        await db.query(RECORD_SWEEP, [reader.tenantId, target.stream.name, t.name, now, now, w.from, w.to, 0, 0, 0, 0]);
      }
    };
    if (!window) {
      await markDone(due, { from: now, to: now });
      return;
    }
    if (await freshlyCovered(db, reader.tenantId, target.stream.name, window, new Date(now.getTime() - tier.everyMs))) {
      // Just read (e.g. by the first cycle's lookback): done without spending the budget.
      await markDone(due, window);
      return;
    }
    const running = runSweep(reader, target.stream, tier, window, { log, signal, maxWindowMs: config.maxWindowMs })
      .then(() => markDone(due.slice(1), window))
      .catch((error: unknown) => {
        if (!signal.aborted) {
          log.warn(
            { err: error, tenant_id: reader.tenantId, stream: target.stream.name, sweep: tier.name },
            "sweep failed; it runs again next tick",
          );
        }
      })
      .finally(() => sweeping.delete(key));
    sweeping.set(key, running);
    if (!options.sweepsInBackground) {
      await running;
    }
  };
  const runTarget = async (target: Target, signal: AbortSignal) => {
    const lease = options.leases?.signal(target.tenant.tenantId, target.stream.name);
    const result = await runCycle({
      db,
      graph: clientFor(target.tenant.tenantId).graph,
      log,
      clock,
      settings: config,
      tenantId: target.tenant.tenantId,
      stream: target.stream,
      signal,
      ...(lease ? { lease } : {}),
      maxPagesPerWindow: config.maxPagesPerWindow,
      ...(metrics ? { metrics } : {}),
    });
    // The sweep's queries stop with the tick or the lease, like the cycle's.
    const sweepSignal = lease ? AbortSignal.any([signal, lease]) : signal;
    await withQueryAbort(sweepSignal, () => sweep(target, result.checkpoint, sweepSignal));
    return result;
  };
  return {
    targets,
    graph: first?.graph as GraphClient,
    tokens: first?.tokens as TokenProvider & { renewals: number },
    graphFor: (tenantId) => clientFor(tenantId).graph,
    readerDepsFor,
    runTarget,
    runOnce: async (signal) => {
      const target = targets[0];
      if (!target) {
        throw new Error("no tenant is configured");
      }
      if (options.leases && !(await options.leases.tryAcquire(target.tenant.tenantId, target.stream.name))) {
        throw new LockedElsewhereError(
          `another replica holds the lease of ${target.tenant.tenantId}/${target.stream.name}`,
        );
      }
      return runTarget(target, signal);
    },
    runAll: async (signal) => {
      const shared = options.leases ? await options.leases.share(targets) : { mine: targets, skipped: [] };
      const mine = shared.mine;
      const outcomes: TargetOutcome[] = shared.skipped.map(({ target, holder }) => ({
        target,
        standby: true,
        ...(holder ? { holder } : {}),
      }));
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
      await Promise.all(sweeping.values());
      if (!options.dispatcher) {
        await dispatcher.close();
      }
    },
  };
}

/**
 * `once`: 0 when every configured target was polled and succeeded; otherwise the most telling failure (internal,
 * then config, then temporary). A target another replica holds (not polled by this run) counts as temporary (75).
 */
export function onceExitCode(outcomes: readonly TargetOutcome[]): ExitCode {
  const codes = outcomes.map((o) => (o.error ? exitCodeFor(o.error) : o.standby ? EXIT.temporary : EXIT.ok));
  for (const code of [EXIT.internal, EXIT.config, EXIT.temporary] as const) {
    if (codes.includes(code)) {
      return code;
    }
  }
  return EXIT.ok;
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
