// One cycle of every (tenant, stream) this replica holds, TENANT_CONCURRENCY at a time, each followed by its due
// sweep: what `run` does on every tick and `once` does once (src/commands/cycles.ts).

import type { Config, TenantConfig } from "../config.ts";
import type { StreamSpec } from "../events/streams.ts";
import type { GraphClient } from "../graph/client.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import { type Pool, withQueryAbort } from "../store/db.ts";
import type { LeaseHolder, StreamLeases } from "../store/leases.ts";
import type { Clock } from "../time.ts";
import { type CycleResult, runCycle } from "./cycle.ts";
import type { ReaderDeps } from "./reader.ts";
import { Sweeper } from "./sweeps.ts";

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

export interface TargetRunnerDeps {
  config: Config;
  db: Pool;
  log: Logger;
  clock: Clock;
  targets: readonly Target[];
  graphFor(tenantId: string): GraphClient;
  readerDepsFor(tenantId: string): ReaderDeps;
  leases?: StreamLeases;
  metrics?: Metrics;
  /** `run`: sweeps run beside the schedule; `once` (default): after the tail, before returning. */
  sweepsInBackground?: boolean;
}

export interface TargetRunner {
  /**
   * One cycle of every target this replica holds (see StreamLeases.share), TENANT_CONCURRENCY at a time. One
   * target's failure never stops the others; each outcome is returned, skipped targets too.
   */
  runAll(signal: AbortSignal): Promise<TargetOutcome[]>;
  /** Waits for sweeps still running in the background. */
  close(): Promise<void>;
}

export function targetRunner(deps: TargetRunnerDeps): TargetRunner {
  const { config, db, log, clock, targets, leases, metrics } = deps;
  const sweeper = new Sweeper(config, log, { background: deps.sweepsInBackground ?? false });
  const runTarget = async (target: Target, signal: AbortSignal): Promise<CycleResult> => {
    const tenantId = target.tenant.tenantId;
    const lease = leases?.signal(tenantId, target.stream.name);
    const result = await runCycle({
      db,
      graph: deps.graphFor(tenantId),
      log,
      clock,
      settings: config,
      tenantId,
      stream: target.stream,
      signal,
      ...(lease ? { lease } : {}),
      reader: deps.readerDepsFor(tenantId),
      ...(metrics ? { metrics } : {}),
    });
    // The sweep's queries stop with the tick or the lease, like the cycle's.
    const sweepSignal = lease ? AbortSignal.any([signal, lease]) : signal;
    await withQueryAbort(sweepSignal, () =>
      sweeper.sweep(deps.readerDepsFor(tenantId), target.stream, result.checkpoint, sweepSignal),
    );
    return result;
  };
  return {
    runAll: async (signal) => {
      const shared = leases ? await leases.share(targets) : { mine: [...targets], skipped: [] };
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
    close: () => sweeper.settled(),
  };
}
