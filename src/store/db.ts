// The connection pool and the transaction helper. One checked-out client per transaction; a client whose
// connection broke is destroyed, never returned to the pool.

import pg from "pg";

import type { Logger } from "../log.ts";

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;

export const APPLICATION_NAME = "signin-ingest";

export function createPool(connectionString: string, log: Logger): Pool {
  const pool = new pg.Pool({
    connectionString,
    application_name: APPLICATION_NAME,
    max: 4,
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
  });
  // Without a listener, an idle client's connection error would crash the process (node-postgres docs).
  pool.on("error", (err) => log.warn({ err }, "idle database connection failed"));
  return pool;
}

/** Runs `work` inside BEGIN … COMMIT on one client; rolls back on any error. */
export async function withTransaction<T>(pool: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  // The pool listens for errors on idle clients only. A checked-out client whose connection dies (PostgreSQL
  // restart, terminated session, TCP reset) emits 'error' as well as failing its query; with no listener that is an
  // uncaught exception that kills the process (exit 1, found by the fault campaign). The query still rejects.
  let lost: Error | undefined;
  const onError = (error: Error) => {
    lost ??= error;
  };
  client.on("error", onError);
  try {
    await client.query("begin");
    const result = await work(client);
    await client.query("commit");
    return result;
  } catch (error) {
    try {
      await client.query("rollback");
    } catch (rollbackError) {
      broken = rollbackError as Error;
    }
    // A query that failed because the connection had died ("Client has encountered a connection error and is not
    // queryable") reports the death itself (ECONNRESET, 57P01…), which callers classify as temporary.
    throw lost ?? error;
  } finally {
    client.removeListener("error", onError);
    client.release(broken ?? lost);
  }
}

/** Waits until the database answers, retrying connection failures with capped backoff, up to `timeoutMs`. */
export async function waitForDatabase(
  pool: Pool,
  options: { timeoutMs: number; log: Logger; signal?: AbortSignal },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  let delay = 500;
  for (let attempt = 1; ; attempt++) {
    try {
      await pool.query("select 1");
      return;
    } catch (error) {
      if (Date.now() + delay > deadline || options.signal?.aborted) {
        throw error;
      }
      options.log.warn({ err: error, attempt, retryInMs: delay }, "database not reachable yet");
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 10_000);
    }
  }
}
