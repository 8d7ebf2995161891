// PostgreSQL's session timeouts fire at their settings on the run's server, on whatever clock the run has.
//
// The daemon bounds every wait with lock_timeout, statement_timeout and idle_in_transaction_session_timeout
// (src/store/db.ts), and several tests rely on those bounds holding, not on their firing early. A server whose
// SIGALRM handler reads another clock than the rest of the backend fires every armed timeout at the first alarm:
// libfaketime wraps the waits (epoll_wait, poll, …) and reports the real time inside them, so under a clock set
// behind a 30 s lock_timeout fired after deadlock_timeout's 1 s and failed a cycle (the calendar passes preload
// .ci/faketime-waits.c for it). These two cases are that failure, each in a second.

import assert from "node:assert/strict";
import { randomInt } from "node:crypto";
import { test } from "node:test";

import pg from "pg";

async function connect(): Promise<pg.Client> {
  const url = process.env.TEST_DATABASE_URL;
  assert.ok(url, "TEST_DATABASE_URL is set by the global setup");
  const client = new pg.Client({ connectionString: url });
  client.on("error", () => undefined);
  await client.connect();
  return client;
}

test("a lock wait ends at lock_timeout, not at deadlock_timeout's earlier alarm", async () => {
  const holder = await connect();
  const waiter = await connect();
  try {
    const key = randomInt(2 ** 47);
    await holder.query("select pg_advisory_lock($1)", [key]);
    await waiter.query("set deadlock_timeout = '100ms'");
    await waiter.query("set lock_timeout = '1500ms'");
    const started = performance.now();
    const error = await waiter.query("select pg_advisory_lock($1)", [key]).then(
      () => undefined,
      (e: unknown) => e as { code?: string },
    );
    const waited = performance.now() - started;
    assert.equal(error?.code, "55P03", "the wait ends with lock_timeout's error");
    // A late end is the machine's load; an early one is a timeout that fired at another's alarm.
    assert.ok(waited >= 1400, `lock_timeout of 1.5 s fired after ${Math.round(waited)} ms`);
  } finally {
    await Promise.all([holder.end(), waiter.end()]);
  }
});

test("a session idle in its transaction is not ended by a finished statement's leftover alarm", async () => {
  const client = await connect();
  try {
    await client.query("set idle_in_transaction_session_timeout = '5s'");
    await client.query("begin");
    // The statement's timer is disarmed when it finishes, but its alarm stays scheduled (PostgreSQL re-arms
    // lazily) and arrives while the session waits for the next statement.
    await client.query("set local statement_timeout = '150ms'");
    await client.query("select 1");
    await new Promise((resolve) => setTimeout(resolve, 700));
    const { rows } = await client.query<{ ok: number }>("select 1 as ok");
    assert.equal(rows[0]?.ok, 1, "the session is still there, 0.7 s into a 5 s idle timeout");
    await client.query("commit");
  } finally {
    await client.end();
  }
});
