// The lease connection of a command (`run`, `once`, `backfill`), from the configuration.

import type { Database } from "../app.ts";
import type { Config } from "../config.ts";
import type { Logger } from "../log.ts";
import { type ReplicaKind, StreamLeases } from "../store/leases.ts";

export function leasesFor(config: Config, database: Database, log: Logger, kind: ReplicaKind): StreamLeases {
  return new StreamLeases(database.url, log, {
    kind,
    ttlMs: config.leaseTtlMs,
    heartbeatMs: config.leaseHeartbeatMs,
  });
}
