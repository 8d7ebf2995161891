// The CLI as users and the container run it: real child processes, signals and exit codes.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { type Simulator, startSimulator } from "../src/simulator/server.ts";
import { startSettings, MMAP_THRESHOLD } from "../src/start-settings.ts";
import { readCheckpoint } from "../src/store/checkpoints.ts";
import { CLI, daemonEnv, runCli, startCli } from "./helpers/daemon.ts";
import { freePort } from "./helpers/global-setup.ts";
import { simulatorSuite } from "./helpers/db.ts";
import { seedRecent } from "./helpers/seed.ts";
import { expectedIds, storedIds } from "./helpers/ingest.ts";

let sim: Simulator;
const { fresh } = simulatorSuite(
  () => startSimulator({ seed: 11, users: 20, signInsPerUserPerDay: 24, historyDays: 2 }),
  (s) => (sim = s),
  { migrate: false },
);
const graphRequests = () => sim.requests().filter((r) => r.path.includes("/auditLogs/")).length;

test("--help works on every command", async () => {
  for (const args of [
    ["--help"],
    ...["run", "once", "migrate", "check", "status", "backfill", "import", "export", "simulate", "config-doc"].map(
      (c) => [c, "--help"],
    ),
  ]) {
    const result = await runCli(args, { PATH: process.env.PATH ?? "" });
    assert.equal(result.code, 0, `${args.join(" ")}: ${result.stderr}`);
    assert.match(result.stdout, /Usage/i, args.join(" "));
  }
  const unknown = await runCli(["frobnicate"], { PATH: process.env.PATH ?? "" });
  assert.equal(unknown.code, 64);
});

test("configuration errors: one message naming every bad variable, exit 78, no stack trace", async () => {
  const result = await runCli(["once"], {
    PATH: process.env.PATH ?? "",
    AZURE_CLIENT_ID: "nope",
    AZURE_CLIENT_SECRET: "x",
    PAGE_SIZE: "0",
  });
  assert.equal(result.code, 78);
  for (const name of ["AZURE_TENANT_ID", "AZURE_CLIENT_ID", "PAGE_SIZE"]) {
    assert.ok(result.stderr.includes(name), `${name} in: ${result.stderr}`);
  }
  assert.ok(!/\n\s+at /.test(result.stderr + result.stdout), "no stack trace");
});

test("`once` fills sign_ins with exactly the window's events; a second `once` inserts nothing; no secret in logs", async () => {
  const db = await fresh();
  sim.setFaults([]);
  const env = daemonEnv(sim, db.url, { PAGE_SIZE: "100" });
  const first = await runCli(["once"], env);
  assert.equal(first.code, 0, first.stderr + first.stdout);
  const line = first.logs.find((l) => l.msg === "cycle complete");
  assert.ok(line);
  const expected = expectedIds(sim, new Date(String(line.window_from)), new Date(String(line.window_to)));
  assert.deepEqual(new Set(await storedIds(db, sim.tenantId)), expected);
  assert.equal(line.inserted, expected.size);

  // The simulator keeps creating sign-ins in real time: the second run inserts exactly those created after the first
  // run's window (often none), never one already stored.
  const second = await runCli(["once"], env);
  assert.equal(second.code, 0);
  const line2 = second.logs.find((l) => l.msg === "cycle complete");
  assert.ok(line2);
  const expected2 = expectedIds(sim, new Date(String(line.window_from)), new Date(String(line2.window_to)));
  assert.deepEqual(new Set(await storedIds(db, sim.tenantId)), expected2);
  assert.equal(line2.inserted, expected2.size - expected.size);
  const all = first.stdout + first.stderr + second.stdout + second.stderr;
  assert.ok(!all.includes(sim.clientSecret), "secret never logged");
  assert.ok(!/Bearer\s+\S{8,}/.test(all), "token never logged");
});

test("SIGKILL between pages leaves the checkpoint unmoved; the next run completes without loss or duplicates", async () => {
  const db = await fresh();
  seedRecent(sim, 300, "crash-test");
  sim.resetRequests();
  sim.setFaults([{ match: { requestNumber: 4 }, kind: "hang", ms: 60_000 }]);
  const env = daemonEnv(sim, db.url, { PAGE_SIZE: "50", INITIAL_LOOKBACK: "6h" });
  const running = startCli(["once"], env);
  await running.waitForLog((l) => l.msg === "page stored" && l.page === 3);
  while (graphRequests() < 4) {
    await new Promise((r) => setTimeout(r, 20));
  }
  running.child.kill("SIGKILL");
  const killed = await running.finished;
  assert.equal(killed.signal, "SIGKILL");
  assert.equal(await readCheckpoint(db.pool, sim.tenantId, "interactiveUser"), undefined, "checkpoint unmoved");
  assert.equal((await storedIds(db, sim.tenantId)).length, 150, "three pages were committed");

  sim.setFaults([]);
  const rerun = await runCli(["once"], env);
  assert.equal(rerun.code, 0, rerun.stderr);
  const line = rerun.logs.find((l) => l.msg === "cycle complete")!;
  const expected = expectedIds(sim, new Date(String(line.window_from)), new Date(String(line.window_to)));
  const stored = await storedIds(db, sim.tenantId);
  assert.equal(stored.length, new Set(stored).size, "no duplicates");
  assert.deepEqual(new Set(stored), expected, "nothing lost");
});

test("`run` cycles at once, then SIGTERM during a Retry-After wait stops it cleanly with exit 0", async () => {
  const db = await fresh();
  sim.resetRequests();
  sim.setFaults([{ match: { requestNumber: 1 }, kind: "status", status: 429, retryAfter: "30" }]);
  const env = daemonEnv(sim, db.url, { POLL_SCHEDULE: "*/5 * * * *" });
  const running = startCli(["run"], env);
  await running.waitForLog((l) => l.msg === "request will be retried");
  const t0 = Date.now();
  running.child.kill("SIGTERM");
  const result = await running.finished;
  sim.setFaults([]);
  assert.equal(result.code, 0, result.stderr);
  assert.ok(Date.now() - t0 < 25_000, "did not wait out the Retry-After (30 s)");
  assert.ok(result.logs.some((l) => l.msg === "shutting down"));
  assert.equal(await readCheckpoint(db.pool, sim.tenantId, "interactiveUser"), undefined);
  // The server ends a backend shortly after its client has gone: on a loaded machine, not at once.
  let open = -1;
  for (let i = 0; i < 100 && open !== 0; i++) {
    if (i > 0) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const rows = await db.pool.query(
      "select count(*)::int as n from pg_stat_activity where application_name = 'signin-ingest'",
    );
    open = rows.rows[0].n as number;
  }
  assert.equal(open, 0, "the pool was closed");
});

test("`run` survives a failing cycle and keeps its schedule; SIGINT exits 0", async () => {
  const db = await fresh();
  sim.resetRequests();
  sim.setFaults([{ match: { requestNumber: 1 }, kind: "status", status: 500 }]);
  const env = daemonEnv(sim, db.url, { POLL_SCHEDULE: "* * * * * *", MAX_RETRIES: "0" });
  const running = startCli(["run"], env);
  await running.waitForLog((l) => l.msg === "cycle failed; the next tick resumes from the checkpoint");
  await running.waitForLog((l) => l.msg === "cycle complete" && Number(l.inserted) > 0, 10_000);
  await running.waitForLog((l) => l.msg === "cycle complete" && l.inserted === 0, 10_000);
  sim.setFaults([]);
  running.child.kill("SIGINT");
  const result = await running.finished;
  assert.equal(result.code, 0);
});

test("exit codes: 78 for a missing licence, 75 when Graph keeps failing", async () => {
  const db = await fresh();
  sim.setMode("no-licence");
  const licence = await runCli(["once"], daemonEnv(sim, db.url));
  sim.setMode("normal");
  assert.equal(licence.code, 78, licence.stdout);
  assert.ok(licence.stdout.includes("P1 or P2"));

  sim.setFaults([{ match: { path: "/auditLogs/" }, kind: "status", status: 503 }]);
  const unavailable = await runCli(["once"], daemonEnv(sim, db.url, { MAX_RETRIES: "1" }));
  sim.setFaults([]);
  assert.equal(unavailable.code, 75, unavailable.stdout);
});

test("`migrate` needs only the database", async () => {
  const db = await fresh();
  const result = await runCli(["migrate"], { PATH: process.env.PATH ?? "", DATABASE_URL: db.url });
  assert.equal(result.code, 0, result.stderr + result.stdout);
  const tables = await db.pool.query(
    "select count(*)::int as n from pg_tables where tablename in ('sign_ins', 'checkpoints')",
  );
  assert.equal(tables.rows[0].n, 2);
});

test("PostgreSQL unreachable at start: exit 75 after DATABASE_WAIT, and Graph is never called", async () => {
  sim.resetRequests();
  const result = await runCli(
    ["once"],
    daemonEnv(sim, "postgres://postgres@127.0.0.1:1/none", { DATABASE_WAIT: "1s" }),
  );
  assert.equal(result.code, 75, result.stdout + result.stderr);
  assert.equal(sim.requests().length, 0);
});

test("`run` serves /healthz, /readyz and Prometheus /metrics; `status` reports each stream", async () => {
  const db = await fresh();
  sim.setFaults([]);
  const port = await freePort();
  const env = daemonEnv(sim, db.url, { METRICS_PORT: String(port), METRICS_HOST: "127.0.0.1" });
  const running = startCli(["run"], env);
  const cycle = await running.waitForLog((l) => l.msg === "cycle complete");
  if (process.platform === "linux") {
    // src/runtime.ts: the plain `node src/cli.ts run` replaced itself (same pid, same arguments) to start with the
    // image's malloc setting and compile cache.
    const environ = readFileSync(`/proc/${String(running.child.pid)}/environ`, "utf8").split("\0");
    assert.ok(environ.includes(`GLIBC_TUNABLES=${MMAP_THRESHOLD}`), environ.join(" "));
    assert.ok(environ.some((v) => v.startsWith("NODE_COMPILE_CACHE=")));
    const cmdline = readFileSync(`/proc/${String(running.child.pid)}/cmdline`, "utf8").split("\0");
    assert.deepEqual(cmdline.slice(1, 3), [CLI, "run"]);
  }
  const base = `http://127.0.0.1:${port}`;
  assert.equal((await fetch(`${base}/healthz`)).status, 200);
  const ready = await fetch(`${base}/readyz`);
  assert.equal(ready.status, 200);
  assert.equal(((await ready.json()) as { database: string }).database, "ok");
  const metrics = await (await fetch(`${base}/metrics`)).text();
  const labels = `tenant_id="${sim.tenantId}",stream="interactiveUser"`;
  assert.match(metrics, new RegExp(`signin_ingest_cycles_total\\{${labels},outcome="success"\\} 1`));
  assert.match(
    metrics,
    new RegExp(`signin_ingest_events_total\\{${labels},result="inserted"\\} ${String(cycle.inserted)}`),
  );
  assert.match(metrics, /signin_ingest_checkpoint_lag_seconds\{[^}]*\} \d/);
  assert.match(metrics, /signin_ingest_arrival_lag_seconds_bucket/);
  assert.match(metrics, /signin_ingest_http_responses_total\{endpoint="graph",status="200"\}/);
  assert.match(metrics, /signin_ingest_token_renewals_total 1/);
  assert.equal((await fetch(`${base}/nope`)).status, 404);
  running.child.kill("SIGTERM");
  assert.equal((await running.finished).code, 0);

  const status = await runCli(["status", "--json"], { PATH: process.env.PATH ?? "", DATABASE_URL: db.url });
  assert.equal(status.code, 0, status.stderr);
  const rows = JSON.parse(status.stdout) as Array<Record<string, unknown>>;
  assert.equal(rows.length, 1);
  assert.equal(rows[0]?.tenantId, sim.tenantId);
  assert.equal(rows[0]?.events, cycle.inserted);
  assert.equal(rows[0]?.lastOutcome, "success");
  assert.equal(rows[0]?.completeUpTo, new Date(String(cycle.window_to)).toISOString());
  assert.equal(rows[0]?.retentionRisk, "ok");
  const table = await runCli(["status"], { PATH: process.env.PATH ?? "", DATABASE_URL: db.url });
  assert.match(table.stdout, /complete up to/);
});

test("two replicas: only the lease holder polls; the standby takes over when the holder is killed", async () => {
  const db = await fresh();
  sim.setFaults([]);
  // A SIGKILLed holder's lease expires after LEASE_TTL: short here, so the takeover is quick.
  const env = daemonEnv(sim, db.url, { POLL_SCHEDULE: "* * * * * *", LEASE_TTL: "6s", LEASE_HEARTBEAT: "1s" });
  const a = startCli(["run"], env);
  await a.waitForLog((l) => l.msg === "cycle complete");
  const b = startCli(["run"], env);
  await b.waitForLog((l) => String(l.msg).includes("standing by"));
  const before = (await readCheckpoint(db.pool, sim.tenantId, "interactiveUser"))!;
  a.child.kill("SIGKILL");
  await a.finished;
  await b.waitForLog((l) => l.msg === "lease acquired: this replica polls the stream", 60_000);
  await b.waitForLog((l) => l.msg === "cycle complete", 30_000);
  const after = (await readCheckpoint(db.pool, sim.tenantId, "interactiveUser"))!;
  assert.ok(after.getTime() >= before.getTime(), "the checkpoint never moved backwards");
  b.child.kill("SIGTERM");
  assert.equal((await b.finished).code, 0);
  const b0 = (await b.finished).logs;
  assert.ok(
    !b0.some(
      (l) =>
        l.msg === "cycle complete" &&
        Date.parse(String(l.time)) <
          Date.parse(String(b0.find((x) => x.msg === "lease acquired: this replica polls the stream")?.time)),
    ),
    "the standby did not poll before taking the lease",
  );
});

test("`check` prints a checklist: exit 0 when everything works, 78 with the fix when the licence is missing", async () => {
  const db = await fresh();
  sim.setFaults([]);
  const env = daemonEnv(sim, db.url, { STREAMS: "interactiveUser,servicePrincipal" });
  const good = await runCli(["check"], env);
  assert.equal(good.code, 0, good.stdout + good.stderr);
  assert.match(good.stdout, /✔ token/);
  assert.match(good.stdout, /✔ stream interactiveUser/);
  assert.match(good.stdout, /✔ stream servicePrincipal/);
  assert.match(good.stdout, /✔ retention/);

  sim.setMode("no-licence");
  const licence = await runCli(["check", "--json"], env);
  sim.setMode("normal");
  assert.equal(licence.code, 78);
  const [tenant] = JSON.parse(licence.stdout) as Array<{
    ok: boolean;
    items: Array<{ name: string; ok: boolean; fix?: string }>;
  }>;
  assert.equal(tenant?.ok, false);
  assert.ok(tenant?.items.find((i) => i.name === "stream interactiveUser" && !i.ok && i.fix?.includes("P1 or P2")));

  const wrong = await runCli(["check"], { ...env, AZURE_CLIENT_SECRET: "wrong" });
  assert.equal(wrong.code, 78);
  assert.match(wrong.stdout, /✘ token: .*AADSTS7000215/);
  assert.match(wrong.stdout, /fix: the client secret is wrong/);

  const status = await runCli(["status", "--json"], { PATH: process.env.PATH ?? "", DATABASE_URL: db.url });
  assert.equal(status.code, 0);
});

test("`run` keeps partitions ahead of time and drops whole months past RETENTION", async () => {
  const db = await fresh();
  sim.setFaults([]);
  await runCli(["migrate"], { PATH: process.env.PATH ?? "", DATABASE_URL: db.url });
  await db.pool.query("select signin_ensure_partition('2025-01-15T00:00:00Z')");
  await db.pool.query(
    `insert into sign_ins (tenant_id, id, created_date_time, stream, raw, first_seen_at, last_changed_at)
     values ('old', 'x', '2025-01-15T00:00:00Z', 'interactiveUser', '{"id":"x"}', now(), now())`,
  );
  const running = startCli(["run"], daemonEnv(sim, db.url, { RETENTION: "90d" }));
  await running.waitForLog((l) => l.msg === "partitions past RETENTION dropped");
  await running.waitForLog((l) => l.msg === "cycle complete");
  running.child.kill("SIGTERM");
  assert.equal((await running.finished).code, 0);
  const parts = (
    await db.pool.query("select relname from pg_class where relname like 'sign_ins_20%' and relkind = 'r'")
  ).rows.map((r) => r.relname as string);
  assert.ok(!parts.includes("sign_ins_2025_01"), "the expired month is gone");
  const next = new Date();
  next.setUTCMonth(next.getUTCMonth() + 1);
  const nextName = `sign_ins_${next.getUTCFullYear()}_${String(next.getUTCMonth() + 1).padStart(2, "0")}`;
  assert.ok(parts.includes(nextName), `next month's partition ${nextName} exists ahead of time`);
});

test("replicas share the (tenant, stream) pairs fairly through leases", async () => {
  const db = await fresh();
  sim.setFaults([]);
  const env = daemonEnv(sim, db.url, {
    POLL_SCHEDULE: "* * * * * *",
    STREAMS: "interactiveUser,nonInteractiveUser,servicePrincipal,managedIdentity",
    SWEEPS: "off",
  });
  const a = startCli(["run"], env);
  await a.waitForLog((l) => l.msg === "cycle complete");
  const b = startCli(["run"], env);
  const locksPerReplica = async () =>
    (
      await db.pool.query(
        `select r.id, count(l.*)::int as locks from replicas r
         left join stream_leases l on l.holder = r.id and l.expires_at > now()
         where r.kind = 'run' group by r.id`,
      )
    ).rows.map((r) => r.locks as number);
  let shares: number[] = [];
  for (let i = 0; i < 100; i++) {
    shares = (await locksPerReplica()).sort();
    if (shares.length === 2 && shares[0] === 2 && shares[1] === 2) {
      break;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.deepEqual(shares, [2, 2], "each replica holds two of the four pairs");
  a.child.kill("SIGTERM");
  b.child.kill("SIGTERM");
  assert.equal((await a.finished).code, 0);
  assert.equal((await b.finished).code, 0);
});

test("`import` and `export` need only the database (and a tenant id), not Graph credentials", async () => {
  const db = await fresh();
  const env = { PATH: process.env.PATH ?? "", DATABASE_URL: db.url, AZURE_TENANT_ID: sim.tenantId };
  const fixture = new URL("./fixtures/SigninActivities1.json", import.meta.url).pathname;
  const imported = await runCli(["import", fixture], env);
  assert.equal(imported.code, 0, imported.stdout + imported.stderr);
  const stored = (await db.pool.query("select count(*)::int as n from sign_ins")).rows[0].n as number;
  assert.ok(stored > 0);
  const exported = await runCli(["export", "--from", "2010-01-01T00:00:00Z", "--to", "2030-01-01T00:00:00Z"], env);
  assert.equal(exported.code, 0, exported.stderr);
  assert.equal(exported.stdout.trim().split("\n").length, stored, "one JSON line per stored event");
  assert.ok(!exported.stdout.includes('"level"'), "logs stay on stderr");
});

test("start settings: the image's malloc setting is added to a user's GLIBC_TUNABLES, never over a chosen threshold", () => {
  const plain = startSettings({ PATH: "/bin" });
  assert.equal(plain?.GLIBC_TUNABLES, MMAP_THRESHOLD);
  assert.match(String(plain?.NODE_COMPILE_CACHE), /node-compile-cache$/);
  assert.equal(plain?.PATH, "/bin", "the rest of the environment is kept");
  const other = startSettings({ GLIBC_TUNABLES: "glibc.malloc.arena_max=2", NODE_COMPILE_CACHE: "/c" });
  assert.equal(other?.GLIBC_TUNABLES, `glibc.malloc.arena_max=2:${MMAP_THRESHOLD}`);
  assert.equal(other?.NODE_COMPILE_CACHE, "/c", "a chosen cache folder is kept");
  assert.equal(startSettings({ NODE_DISABLE_COMPILE_CACHE: "1" })?.NODE_COMPILE_CACHE, undefined);
  // Already set (the image), or the user's own threshold: no re-exec, so it cannot loop.
  assert.equal(startSettings({ GLIBC_TUNABLES: MMAP_THRESHOLD }), undefined);
  assert.equal(startSettings({ NODE_CHANNEL_FD: "3" }), undefined, "an IPC channel would not survive execve");
  assert.equal(
    startSettings({ GLIBC_TUNABLES: "glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=65536" }),
    undefined,
  );
});
