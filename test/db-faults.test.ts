// A hung or hostile database (issue 12 §4, §5), with real processes: a blackholed PostgreSQL (the TCP fault proxy),
// a session holding a lock the cycle needs, a PostgreSQL session killed mid-export, and a BI login squatting on
// everything it can. Bounds are generous (a loaded machine); without the fixes these cases hang or crash.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { test } from "node:test";

import { type Simulator, startSimulator } from "../src/simulator/server.ts";
import { readCheckpoint } from "../src/store/checkpoints.ts";
import { PgProxy } from "./faults/pg-proxy.ts";
import { createReaderLogin, startLockSquatter } from "./faults/db-squatter.ts";
import { CLI, daemonEnv, runCli, startCli } from "./helpers/daemon.ts";
import { simulatorSuite, type TestDatabase } from "./helpers/db.ts";
import { seedRecent } from "./helpers/seed.ts";
import { freePort } from "./helpers/global-setup.ts";
import { upsertPages } from "./helpers/views-fixture.ts";

let sim: Simulator;
const { fresh } = simulatorSuite(
  () => startSimulator({ seed: 19, users: 20, signInsPerUserPerDay: 24, historyDays: 2 }),
  (s) => (sim = s),
);

async function proxyFor(db: TestDatabase): Promise<PgProxy> {
  const u = new URL(db.url);
  return PgProxy.start({ host: u.hostname, port: Number(u.port) });
}

async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) {
      return value;
    }
    if (Date.now() > until) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The daemon's backends (pool sessions) in this database, with what they wait for. */
async function daemonBackends(db: TestDatabase): Promise<Array<{ pid: number; state: string; wait: string | null }>> {
  const { rows } = await db.pool.query(
    `select pid, state, wait_event_type as wait from pg_stat_activity
     where datname = current_database() and application_name = 'signin-ingest'`,
  );
  return rows;
}

test("blackholed PostgreSQL mid-cycle: `once` exits 75 soon after CYCLE_DEADLINE", async () => {
  const db = await fresh();
  const proxy = await proxyFor(db);
  try {
    seedRecent(sim, 300, "blackhole-once");
    sim.resetRequests();
    // Graph answers slowly from the third request, so the blackhole starts while pages are still being stored.
    sim.setFaults([{ match: { from: 3 }, kind: "hang", ms: 1500 }]);
    const running = startCli(
      ["once"],
      daemonEnv(sim, proxy.url(db.url), { PAGE_SIZE: "50", INITIAL_LOOKBACK: "6h", CYCLE_DEADLINE: "8s" }),
    );
    await running.waitForLog((l) => l.msg === "page stored", 60_000);
    proxy.setMode("blackhole");
    const blackholedAt = Date.now();
    const result = await running.finished;
    const seconds = (Date.now() - blackholedAt) / 1000;
    assert.equal(result.code, 75, result.stdout.slice(-3000) + result.stderr);
    assert.ok(
      result.logs.some((l) => String((l.err as { message?: string } | undefined)?.message).includes("cycle deadline")),
      "the cycle ended at its deadline",
    );
    // CYCLE_DEADLINE (8 s) + recording the failure (≤ 10 s) + closing (≤ 10 s); generous for a loaded machine.
    assert.ok(seconds < 120, `once took ${seconds} s after the blackhole`);
  } finally {
    sim.setFaults([]);
    proxy.setMode("pass");
    await proxy.close();
  }
});

test("blackholed PostgreSQL: `run` answers SIGTERM with exit 0, its queries abandoned", async () => {
  const db = await fresh();
  const proxy = await proxyFor(db);
  try {
    seedRecent(sim, 300, "blackhole-run");
    sim.resetRequests();
    sim.setFaults([{ match: { from: 3 }, kind: "hang", ms: 1500 }]);
    const running = startCli(
      ["run"],
      daemonEnv(sim, proxy.url(db.url), { PAGE_SIZE: "50", INITIAL_LOOKBACK: "6h", SHUTDOWN_GRACE: "2m" }),
    );
    await running.waitForLog((l) => l.msg === "page stored", 60_000);
    proxy.setMode("blackhole");
    await new Promise((r) => setTimeout(r, 1000));
    running.child.kill("SIGTERM");
    const result = await running.finished;
    // 0, not SHUTDOWN_GRACE's 75: the cycle's queries were cancelled and the process stopped by itself.
    assert.equal(result.code, 0, result.stdout.slice(-3000) + result.stderr);
    assert.equal(await readCheckpoint(db.pool, sim.tenantId, "interactiveUser"), undefined, "checkpoint unmoved");
  } finally {
    sim.setFaults([]);
    proxy.setMode("pass");
    await proxy.close();
  }
});

test("a held table lock: lock_timeout fails the cycle (75); past CYCLE_DEADLINE its statement is cancelled", async () => {
  const db = await fresh();
  sim.setFaults([]);
  const holder = await db.pool.connect();
  try {
    await holder.query("begin");
    await holder.query("lock table checkpoints in access exclusive mode");

    const short = await runCli(["once"], daemonEnv(sim, db.url, { DB_LOCK_TIMEOUT: "2s" }));
    assert.equal(short.code, 75, short.stdout.slice(-3000));
    assert.ok(
      short.logs.some((l) => (l.err as { code?: string } | undefined)?.code === "55P03"),
      "lock_timeout",
    );

    const started = Date.now();
    const deadline = await runCli(["once"], daemonEnv(sim, db.url, { DB_LOCK_TIMEOUT: "0s", CYCLE_DEADLINE: "5s" }));
    assert.equal(deadline.code, 75, deadline.stdout.slice(-3000));
    assert.ok((Date.now() - started) / 1000 < 120, "ended, not waiting for the lock");
    // The waiting statement was cancelled on the server too: no daemon backend is left waiting for the lock.
    await eventually("no daemon backend waiting", async () =>
      (await daemonBackends(db)).some((b) => b.wait === "Lock") ? undefined : true,
    );

    const run = startCli(["run"], daemonEnv(sim, db.url, { DB_LOCK_TIMEOUT: "0s" }));
    await eventually("the daemon waiting for the lock", async () =>
      (await daemonBackends(db)).some((b) => b.wait === "Lock") ? true : undefined,
    );
    run.child.kill("SIGTERM");
    assert.equal((await run.finished).code, 0);
    await eventually("no daemon backend waiting", async () =>
      (await daemonBackends(db)).some((b) => b.wait === "Lock") ? undefined : true,
    );
  } finally {
    await holder.query("rollback");
    holder.release();
  }
  const after = await runCli(["once"], daemonEnv(sim, db.url));
  assert.equal(after.code, 0, "with the lock gone, the next run succeeds");
});

test("export: its PostgreSQL session terminated mid-export ends with exit 75 and a clear error, not a crash", async () => {
  const db = await fresh();
  const tenant = "export-kill-tenant";
  const base = Date.parse("2026-03-10T00:00:00Z");
  const events = Array.from({ length: 3000 }, (_, i) => ({
    id: `exp-${i}`,
    createdDateTime: new Date(base + i * 1000).toISOString(),
    userPrincipalName: `user-${i}@example.com`,
    appDisplayName: "x".repeat(200),
    status: { errorCode: 0 },
  }));
  await upsertPages(db.pool, tenant, events, new Date());
  const child = spawn(
    process.execPath,
    [CLI, "export", "--from", "2026-03-01T00:00:00Z", "--to", "2026-04-01T00:00:00Z", "--page-size", "10"],
    {
      env: { PATH: process.env.PATH ?? "", DATABASE_URL: db.url, AZURE_TENANT_ID: tenant },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  // Nobody reads stdout yet: the export blocks on the full pipe, inside its transaction.
  child.stdout.pause();
  // Idle in its transaction after a fetch (not in the moment between BEGIN and the cursor's first fetch).
  const pid = await eventually("the export's session idle in its transaction", async () => {
    const { rows } = await db.pool.query(
      `select pid from pg_stat_activity where datname = current_database() and application_name = 'signin-ingest'
       and state = 'idle in transaction' and query ilike 'fetch forward%'`,
    );
    return rows[0]?.pid as number | undefined;
  });
  await db.pool.query("select pg_terminate_backend($1)", [pid]);
  let out = 0;
  child.stdout.on("data", (c: Buffer) => (out += c.length));
  child.stdout.resume();
  const code = await exited;
  assert.equal(code, 75, stderr);
  assert.ok(out > 0, "some events were written before");
  // The error is the connection's end as the client saw it first: PostgreSQL's 57P01 message, or the reset.
  assert.match(stderr, /"exitCode":75,"msg":"stopped: temporary failure/);
  assert.match(stderr, /terminating connection|Connection terminated|ECONNRESET/);
  assert.ok(!/unexpected error|Unhandled 'error' event/.test(stderr), stderr);
});

test("a BI login squatting on everything it can does not stop ingestion; the lease tables are closed to it", async () => {
  const db = await fresh();
  sim.setFaults([]);
  const streams = ["interactiveUser", "nonInteractiveUser", "servicePrincipal"];
  // The months the cycle writes exist already: attaching a partition needs an exclusive lock on the default
  // partition, which the squatter's open read of sign_ins blocks (partition maintenance, another branch).
  const now = new Date();
  for (const months of [-1, 0, 1]) {
    const month = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + months, 1));
    await db.pool.query("select signin_ensure_partition($1)", [month]);
  }
  const login = await createReaderLogin(process.env.TEST_DATABASE_URL ?? "", db.url);
  const squatter = await startLockSquatter(
    login.url,
    streams.map((stream) => ({ tenantId: sim.tenantId, stream })),
    // The partition creator's advisory lock is being replaced by a table lock (migration 0017, another branch);
    // held, it now costs a cycle DB_LOCK_TIMEOUT and exit 75 instead of a hang.
    { partitionLock: false },
  );
  try {
    const allowed = squatter.attempts.filter((a) => a.allowed).map((a) => a.what);
    const refused = squatter.attempts.filter((a) => !a.allowed);
    // It can still take the old advisory locks and read sign_ins: they no longer mean anything to the daemon.
    assert.ok(allowed.some((a) => a.startsWith("advisory lock signin-ingest/")));
    for (const what of [
      "insert into replicas",
      "update stream_leases",
      "read stream_leases",
      "lock table stream_leases",
    ]) {
      const a = refused.find((r) => r.what === what);
      assert.equal(a?.code, "42501", `${what}: ${JSON.stringify(squatter.attempts)}`);
    }
    const once = await runCli(["once"], daemonEnv(sim, db.url, { STREAMS: streams.join(","), SWEEPS: "off" }));
    assert.equal(once.code, 0, once.stdout.slice(-3000));
    const polled = once.logs.filter((l) => l.msg === "cycle complete").map((l) => l.stream);
    assert.deepEqual([...polled].sort(), [...streams].sort(), "every stream was polled");
  } finally {
    await squatter.close();
    await login.drop();
  }
});

test("a stream held by a live `run` replica: `once` polls the rest, names the holder and exits 75; `status` shows it", async () => {
  const db = await fresh();
  sim.setFaults([]);
  const daemon = startCli(["run"], daemonEnv(sim, db.url, { STREAMS: "interactiveUser", SWEEPS: "off" }));
  try {
    await daemon.waitForLog((l) => l.msg === "cycle complete", 60_000);
    const once = await runCli(
      ["once"],
      daemonEnv(sim, db.url, { STREAMS: "interactiveUser,servicePrincipal", SWEEPS: "off" }),
    );
    assert.equal(once.code, 75, once.stdout.slice(-3000));
    const skipped = once.logs.find((l) => l.msg === "stream skipped: another replica holds its lease");
    assert.equal(skipped?.stream, "interactiveUser");
    assert.equal(skipped?.holder_pid, daemon.child.pid);
    assert.ok(once.logs.some((l) => l.msg === "cycle complete" && l.stream === "servicePrincipal"));

    const status = await runCli(
      ["status", "--json"],
      daemonEnv(sim, db.url, { STREAMS: "interactiveUser,servicePrincipal,managedIdentity" }),
    );
    assert.equal(status.code, 0, status.stderr);
    const rows = JSON.parse(status.stdout) as Array<{
      stream: string;
      configured: boolean;
      lastOutcome: string | null;
      lease: { kind: string; pid: number; live: boolean } | null;
    }>;
    const by = new Map(rows.map((r) => [r.stream, r]));
    assert.equal(by.get("interactiveUser")?.lease?.kind, "run");
    assert.equal(by.get("interactiveUser")?.lease?.pid, daemon.child.pid);
    assert.equal(by.get("interactiveUser")?.lease?.live, true);
    assert.equal(by.get("servicePrincipal")?.lastOutcome, "success");
    assert.equal(by.get("managedIdentity")?.configured, true, "a configured stream never polled is listed");
    assert.equal(by.get("managedIdentity")?.lastOutcome, null);
  } finally {
    daemon.child.kill("SIGTERM");
    assert.equal((await daemon.finished).code, 0);
  }
});

test("every cycle failing: `status` lists the stream with its error, `/readyz` turns 503 (stalled), then 200", async () => {
  const db = await fresh();
  sim.setFaults([{ match: { path: "/auditLogs/" }, kind: "status", status: 503 }]);
  const port = await freePort();
  const running = startCli(
    ["run"],
    daemonEnv(sim, db.url, {
      POLL_SCHEDULE: "* * * * * *",
      READY_CYCLE_MULTIPLE: "3",
      MAX_RETRIES: "0",
      METRICS_PORT: String(port),
      METRICS_HOST: "127.0.0.1",
    }),
  );
  try {
    await running.waitForLog((l) => l.msg === "cycle failed; the next tick resumes from the checkpoint", 60_000);
    const status = await runCli(["status", "--json"], { PATH: process.env.PATH ?? "", DATABASE_URL: db.url });
    const rows = JSON.parse(status.stdout) as Array<{ stream: string; lastOutcome: string; lastError: string }>;
    assert.equal(rows.length, 1, "listed before its first success");
    assert.equal(rows[0]?.lastOutcome, "failure");
    assert.match(rows[0]?.lastError ?? "", /503/);

    const readyz = async () => {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`);
      return {
        status: res.status,
        body: (await res.json()) as { streams: Array<{ state: string; lastError: string }> },
      };
    };
    const stalled = await eventually("/readyz 503", async () => {
      const r = await readyz();
      return r.status === 503 ? r : undefined;
    });
    assert.equal(stalled.body.streams[0]?.state, "stalled");
    assert.match(stalled.body.streams[0]?.lastError ?? "", /503/);
    sim.setFaults([]);
    const ready = await eventually("/readyz 200", async () => {
      const r = await readyz();
      return r.status === 200 ? r : undefined;
    });
    assert.equal(ready.body.streams[0]?.state, "ok");
  } finally {
    sim.setFaults([]);
    running.child.kill("SIGTERM");
    await running.finished;
  }
});

test("a BI login holding the partition creator's lock: CYCLE_DEADLINE ends `once`, SIGTERM ends `run`", async () => {
  const db = await fresh();
  sim.setFaults([]);
  const login = await createReaderLogin(process.env.TEST_DATABASE_URL ?? "", db.url);
  const squatter = await startLockSquatter(login.url, [{ tenantId: sim.tenantId, stream: "interactiveUser" }]);
  try {
    // No lock_timeout: only the deadline (or the signal) can end a cycle that waits.
    const env = daemonEnv(sim, db.url, { DB_LOCK_TIMEOUT: "0s", CYCLE_DEADLINE: "5s", SWEEPS: "off" });
    const started = Date.now();
    const once = await runCli(["once"], env);
    assert.ok(once.code === 0 || once.code === 75, `exit ${once.code}\n${once.stdout.slice(-3000)}`);
    assert.ok((Date.now() - started) / 1000 < 120, "ended, not waiting for the lock");
    const run = startCli(["run"], env);
    await run.waitForLog((l) => l.msg === "scheduled", 60_000);
    await new Promise((r) => setTimeout(r, 1000));
    run.child.kill("SIGTERM");
    assert.equal((await run.finished).code, 0);
  } finally {
    await squatter.close();
    await login.drop();
  }
});
