// The operations listener: /healthz (the process answers), /readyz (database reachable and every configured
// stream either progressing here or polled by another live replica: see readiness.ts), /metrics (Prometheus).

import { createServer, type Server } from "node:http";

import type { Logger } from "./log.ts";
import type { Metrics } from "./metrics.ts";
import type { ReadinessTracker, StreamReadiness } from "./readiness.ts";
import { type Pool, withQueryAbort } from "./store/db.ts";

export interface Readiness {
  tracker: ReadinessTracker;
  now: () => Date;
}

interface ReadyReport {
  ready: boolean;
  /** "ok", or why the database did not answer. */
  database: string;
  /** The latest cycle of any stream that moved a window. */
  lastSuccess: string | null;
  maxAgeSeconds: number;
  /** Per configured (tenant, stream): ok, standby, starting (grace) or stalled, with the last outcome and error. */
  streams: StreamReadiness[];
}

async function checkReady(db: Pool, readiness: Readiness): Promise<ReadyReport> {
  let database = "ok";
  try {
    // Cancelled (its connection dropped) after 2 s: probes of a hung database never pile up on the pool.
    await withQueryAbort(AbortSignal.timeout(2000), () => db.query("select 1"));
  } catch (error) {
    database =
      error instanceof DOMException && error.name === "TimeoutError" ? "timed out after 2s" : (error as Error).message;
  }
  const report = readiness.tracker.report(readiness.now());
  const progress = report.streams.map((s) => s.lastProgressAt).filter((t): t is string => t !== null);
  return {
    ready: database === "ok" && report.ready,
    database,
    lastSuccess: progress.sort().at(-1) ?? null,
    maxAgeSeconds: readiness.tracker.maxAgeMs / 1000,
    streams: report.streams,
  };
}

export interface OpsServer {
  port: number;
  close(): Promise<void>;
}

export async function startOpsServer(options: {
  host: string;
  port: number;
  db: Pool;
  metrics: Metrics;
  readiness: Readiness;
  log: Logger;
}): Promise<OpsServer> {
  const { db, metrics, readiness, log } = options;
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const reply = (status: number, type: string, body: string) => {
      res.writeHead(status, { "content-type": type, "cache-control": "no-store" });
      res.end(body);
    };
    if (req.method !== "GET" && req.method !== "HEAD") {
      reply(405, "text/plain", "method not allowed\n");
      return;
    }
    if (path === "/healthz") {
      reply(200, "text/plain", "ok\n");
    } else if (path === "/readyz") {
      checkReady(db, readiness).then(
        (report) => reply(report.ready ? 200 : 503, "application/json", JSON.stringify(report) + "\n"),
        (error: unknown) => reply(503, "text/plain", `${(error as Error).message}\n`),
      );
    } else if (path === "/metrics") {
      metrics.registry.metrics().then(
        (text) => reply(200, metrics.registry.contentType, text),
        (error: unknown) => reply(500, "text/plain", `${(error as Error).message}\n`),
      );
    } else {
      reply(404, "text/plain", "not found: try /healthz, /readyz or /metrics\n");
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  log.info({ host: options.host, port }, "ops listener: /healthz /readyz /metrics");
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
