// The connection pool and the transaction helper. One checked-out client per transaction; a client whose
// connection broke is destroyed, never returned to the pool.
//
// A hung database must not hang the daemon. Every session gets statement_timeout, lock_timeout and
// idle_in_transaction_session_timeout (the server ends what runs too long), the client gives up on a statement it
// sent DB_STATEMENT_TIMEOUT + QUERY_TIMEOUT_MARGIN_MS ago (a blackholed server answers nothing), and TCP keepalive
// starts probing an idle connection after KEEPALIVE_DELAY_MS. Aborting work (CYCLE_DEADLINE, SIGTERM, a lost
// lease) cancels its queries at once: the backend gets a protocol CancelRequest and the client's socket is
// destroyed, so the await rejects whether or not the server is still there.
//
// Which signal cancels a query: the one given to withTransaction, or else the one of the enclosing
// withQueryAbort(signal, work) — so code deep inside a cycle (readers, stores, the coverage ledger) is cancelled
// with its cycle without passing the signal through every call.

import { AsyncLocalStorage } from "node:async_hooks";
import { createConnection, type Socket } from "node:net";

import pg from "pg";

import { isTemporaryDatabaseError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { sleep } from "../time.ts";

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;

const APPLICATION_NAME = "signin-ingest";

/** The client waits this much longer than statement_timeout before it gives up on a silent server. */
const QUERY_TIMEOUT_MARGIN_MS = 30_000;
/** TCP keepalive probes start after a connection was idle this long. */
const KEEPALIVE_DELAY_MS = 10_000;
/** A connection (or a free pooled client) that takes longer than this fails the query. */
const CONNECT_TIMEOUT_MS = 10_000;

export interface DatabaseTimeouts {
  /** Server-side statement_timeout (0: the server's default). */
  statementTimeoutMs: number;
  /** Server-side lock_timeout (0: the server's default). */
  lockTimeoutMs: number;
  /** Server-side idle_in_transaction_session_timeout (0: the server's default). */
  idleInTransactionTimeoutMs: number;
}

/** Timeouts for pools built without a Config (tests, tools): the documented defaults. */
export const DEFAULT_TIMEOUTS: DatabaseTimeouts = {
  statementTimeoutMs: 120_000,
  lockTimeoutMs: 30_000,
  idleInTransactionTimeoutMs: 60_000,
};

/** node-postgres connection options that bound every wait on the server (shared with the lease connection). */
export function connectionOptions(timeouts: DatabaseTimeouts): pg.ClientConfig {
  return {
    statement_timeout: timeouts.statementTimeoutMs,
    lock_timeout: timeouts.lockTimeoutMs,
    idle_in_transaction_session_timeout: timeouts.idleInTransactionTimeoutMs,
    query_timeout: timeouts.statementTimeoutMs === 0 ? 0 : timeouts.statementTimeoutMs + QUERY_TIMEOUT_MARGIN_MS,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    keepAlive: true,
    keepAliveInitialDelayMillis: KEEPALIVE_DELAY_MS,
  };
}

const scope = new AsyncLocalStorage<AbortSignal>();

/** Runs `work` so that every query it makes on a pool from createPool is cancelled when `signal` aborts. */
export function withQueryAbort<T>(signal: AbortSignal, work: () => Promise<T>): Promise<T> {
  return scope.run(signal, work);
}

/** A CancelRequest's connection is given up after this. */
const CANCEL_TIMEOUT_MS = 5000;
const pendingCancels = new Set<Promise<void>>();

/** Resolves once every CancelRequest sent so far was delivered or given up (before the process exits). */
export async function cancelsSent(): Promise<void> {
  await Promise.all([...pendingCancels]);
}

interface ClientInternals {
  processID: number | null;
  secretKey: number | null;
  host: string;
  port: number;
  connection: { stream: Socket };
}

/**
 * Stops whatever `client` is doing: a CancelRequest to its backend on a new connection (fire and forget, so a
 * backend waiting for a lock stops waiting), then its socket destroyed (so the pending query rejects now, even when
 * the server cannot be reached). The client is unusable afterwards: release it with an error.
 */
function cancelClient(client: pg.ClientBase): void {
  const c = client as unknown as ClientInternals;
  if (c.processID !== null && c.secretKey !== null && c.host) {
    let done: () => void = () => undefined;
    const sent = new Promise<void>((resolve) => (done = resolve));
    pendingCancels.add(sent);
    void sent.then(() => pendingCancels.delete(sent));
    const cancel = Buffer.alloc(16);
    cancel.writeInt32BE(16, 0);
    cancel.writeInt32BE(80877102, 4);
    cancel.writeInt32BE(c.processID, 8);
    cancel.writeInt32BE(c.secretKey, 12);
    const socket = c.host.startsWith("/")
      ? createConnection(`${c.host}/.s.PGSQL.${c.port}`)
      : createConnection(c.port, c.host);
    socket.on("error", () => undefined);
    socket.on("close", done);
    socket.setTimeout(CANCEL_TIMEOUT_MS, () => socket.destroy());
    socket.on("connect", () => socket.end(cancel));
  }
  c.connection.stream.destroy();
}

/** A client from the pool, or the abort's reason as soon as `signal` aborts while waiting for one. */
async function connect(pool: Pool, signal: AbortSignal | undefined): Promise<PoolClient> {
  if (!signal) {
    return pool.connect();
  }
  signal.throwIfAborted();
  const pending = pool.connect();
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return await Promise.race([pending, aborted]);
  } catch (error) {
    // Given up on: whenever the client arrives, it goes straight back.
    pending.then(
      (client) => client.release(),
      () => undefined,
    );
    throw error;
  } finally {
    signal.removeEventListener("abort", onAbort as () => void);
  }
}

/**
 * Runs `work(client)` on a checked-out client: destroys the client if `signal` aborts meanwhile (the error is then
 * the abort's reason), or if its connection died or a statement timed out on the client side. Releases the client.
 */
async function useClient<T>(
  pool: Pool,
  signal: AbortSignal | undefined,
  work: (client: PoolClient, settle: (error: unknown) => Promise<void>) => Promise<T>,
): Promise<T> {
  const client = await connect(pool, signal);
  // The pool listens for errors on idle clients only. A checked-out client whose connection dies (PostgreSQL
  // restart, terminated session, TCP reset, or our own cancel) emits 'error' as well as failing its query; with no
  // listener that is an uncaught exception that kills the process (exit 1, found by the fault campaign).
  let lost: Error | undefined;
  const onError = (error: Error) => {
    lost ??= error;
  };
  client.on("error", onError);
  let broken: Error | undefined;
  let cancelled = false;
  const cancel = () => {
    if (!cancelled) {
      cancelled = true;
      cancelClient(client);
    }
  };
  const onAbort = () => {
    broken ??= new Error("query cancelled");
    cancel();
  };
  signal?.addEventListener("abort", onAbort, { once: true });
  /** After `error`, can the client still roll back? If not, it is destroyed (and the abort's reason reported). */
  const settle = async (error: unknown): Promise<void> => {
    if (signal?.aborted || lost || isClientTimeout(error)) {
      broken ??= lost ?? (error as Error);
      return;
    }
    try {
      await client.query("rollback");
    } catch (rollbackError) {
      broken = rollbackError as Error;
    }
  };
  try {
    return await work(client, settle);
  } catch (error) {
    // A query that failed because the connection had died ("Client has encountered a connection error and is not
    // queryable") reports the death itself (ECONNRESET, 57P01…), which callers classify as temporary.
    throw signal?.aborted ? signal.reason : (lost ?? error);
  } finally {
    signal?.removeEventListener("abort", onAbort);
    client.removeListener("error", onError);
    if (broken || lost) {
      cancel();
    }
    client.release(broken ?? lost);
  }
}

/** node-postgres gave up waiting for the server (query_timeout): the statement may still be running there. */
function isClientTimeout(error: unknown): boolean {
  return error instanceof Error && error.message === "Query read timeout";
}

/**
 * A pg.Pool whose `pool.query(text, values)` is cancelled by the enclosing withQueryAbort signal. Other call forms
 * (callbacks, query objects) behave as pg.Pool's.
 */
class CancellablePool extends pg.Pool {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  override query(...args: any[]): any {
    const signal = scope.getStore();
    const [text, values] = args as [unknown, unknown];
    if (signal === undefined || typeof text !== "string" || args.length > 2 || typeof values === "function") {
      return (pg.Pool.prototype.query as (...a: unknown[]) => unknown).apply(this, args);
    }
    return useClient(this, signal, (client) => client.query(text, values as unknown[] | undefined));
  }
}

export function createPool(connectionString: string, log: Logger, timeouts: DatabaseTimeouts = DEFAULT_TIMEOUTS): Pool {
  const pool = new CancellablePool({
    connectionString,
    application_name: APPLICATION_NAME,
    max: 4,
    idleTimeoutMillis: 30_000,
    ...connectionOptions(timeouts),
  });
  // Without a listener, an idle client's connection error would crash the process (node-postgres docs).
  pool.on("error", (err) => log.warn({ err }, "idle database connection failed"));
  return pool;
}

export interface TransactionOptions {
  /** Cancels the transaction's queries (default: the enclosing withQueryAbort signal). */
  signal?: AbortSignal;
}

/** Runs `work` inside BEGIN … COMMIT on one client; rolls back on any error. */
export async function withTransaction<T>(
  pool: Pool,
  work: (client: PoolClient) => Promise<T>,
  options: TransactionOptions = {},
): Promise<T> {
  return useClient(pool, options.signal ?? scope.getStore(), async (client, settle) => {
    try {
      await client.query("begin");
      const result = await work(client);
      await client.query("commit");
      return result;
    } catch (error) {
      await settle(error);
      throw error;
    }
  });
}

/**
 * Waits until the database answers, retrying connection failures with capped backoff, up to `timeoutMs`. Only a
 * failure the server may get over (isTemporaryDatabaseError: refused, reset, starting up) is retried; a wrong
 * password, a missing database or a bad URL is thrown at once. Each retry is one short line (no stack).
 */
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
      if (Date.now() + delay > deadline || options.signal?.aborted || !isTemporaryDatabaseError(error)) {
        throw error;
      }
      const reason = error instanceof Error ? error.message : String(error);
      const code = (error as { code?: unknown }).code;
      options.log.warn({ reason, code, attempt, retryInMs: delay }, "database not reachable yet");
      // SIGTERM while waiting ends the wait at once (the abort's reason is thrown).
      await sleep(delay, options.signal);
      delay = Math.min(delay * 2, 10_000);
    }
  }
}
