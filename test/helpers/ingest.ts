// In-process wiring of the real ingest path (config → Graph client → cycle → PostgreSQL) for tests: the ingester
// production builds (src/app.ts createIngester), run through its production entry (runAll).

import type { DestinationStream } from "pino";

import { createIngester, type Ingester } from "../../src/app.ts";
import { type Config, loadConfig } from "../../src/config.ts";
import type { CycleResult } from "../../src/ingest/cycle.ts";
import { isGraphDateTime } from "../../src/events/classify.ts";
import { createLogger } from "../../src/log.ts";
import type { Metrics } from "../../src/metrics.ts";
import type { Simulator } from "../../src/simulator/server.ts";
import type { Clock } from "../../src/time.ts";
import type { TestDatabase } from "./db.ts";

export interface IngestHarness {
  config: Config;
  ingester: Ingester;
  /** Every log line written so far, raw text (for secret checks) and parsed. */
  logText(): string;
  logs(): Array<Record<string, unknown>>;
  /** One cycle of the one configured (tenant, stream) through runAll: its result, or its error thrown. */
  run(signal?: AbortSignal): Promise<CycleResult>;
  close(): Promise<void>;
}

export function ingestHarness(
  sim: Simulator,
  db: TestDatabase,
  env: Record<string, string> = {},
  options: { clock?: Clock; metrics?: Metrics } = {},
): IngestHarness {
  const config = loadConfig({
    DATABASE_URL: db.url,
    AZURE_TENANT_ID: sim.tenantId,
    AZURE_CLIENT_ID: sim.clientId,
    AZURE_CLIENT_SECRET: sim.clientSecret,
    AZURE_AUTHORITY_HOST: sim.url,
    GRAPH_ENDPOINT: sim.url,
    INITIAL_LOOKBACK: "1d",
    RETRY_BASE_DELAY: "10ms",
    MAX_RETRIES: "3",
    HTTP_TIMEOUT: "3s",
    LOG_LEVEL: "trace",
    GRAPH_BUDGET_PER_TENANT: "10000",
    ...env,
  });
  let text = "";
  const destination: DestinationStream = {
    write: (line: string) => {
      text += line;
    },
  };
  const log = createLogger(config.logLevel, destination);
  const ingester = createIngester(config, db.pool, log, {
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.metrics ? { metrics: options.metrics } : {}),
  });
  return {
    config,
    ingester,
    logText: () => text,
    logs: () =>
      text
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    run: (signal) => runSingle(ingester, signal),
    close: () => ingester.close(),
  };
}

/** runAll of an ingester with exactly one (tenant, stream): that target's result, or its error thrown. */
export async function runSingle(ingester: Ingester, signal = new AbortController().signal): Promise<CycleResult> {
  if (ingester.targets.length !== 1) {
    throw new Error(`runSingle needs exactly one target, not ${ingester.targets.length}: use runAll`);
  }
  const [outcome] = await ingester.runAll(signal);
  if (outcome?.error) {
    throw outcome.error;
  }
  if (!outcome?.result) {
    throw new Error("runAll returned no result (aborted before the cycle started?)");
  }
  return outcome.result;
}

/** Events the simulator shows now with createdDateTime in [from, to] (the oracle for one window). */
export function expectedIds(sim: Simulator, from: Date, to: Date, eventType = "interactiveUser"): Set<string> {
  const lo = sevenDigits(from.toISOString());
  const hi = sevenDigits(to.toISOString());
  const ids = new Set<string>();
  for (const e of sim.visibleEvents()) {
    // Events the daemon rightly rejects (no id, bad time) are not expected in sign_ins.
    if (typeof e.id !== "string" || e.id === "" || !isGraphDateTime(e.createdDateTime)) {
      continue;
    }
    const types = e.signInEventTypes;
    const type = Array.isArray(types) && typeof types[0] === "string" ? types[0] : "interactiveUser";
    if (type !== eventType) {
      continue;
    }
    const at = sevenDigits(String(e.createdDateTime));
    if (at >= lo && at <= hi) {
      ids.add(String(e.id));
    }
  }
  return ids;
}

/** `2026-11-28T10:00:00.5Z` → `2026-11-28T10:00:00.5000000Z`, so UTC timestamps compare as strings, as Graph does. */
function sevenDigits(iso: string): string {
  const match = /^(.{19})(?:\.(\d+))?Z$/.exec(iso);
  return match ? `${match[1]}.${(match[2] ?? "").padEnd(7, "0").slice(0, 7)}Z` : iso;
}

export async function storedIds(db: TestDatabase, tenantId: string): Promise<string[]> {
  const result = await db.pool.query<{ id: string }>("select id from sign_ins where tenant_id = $1", [tenantId]);
  return result.rows.map((r) => r.id);
}
