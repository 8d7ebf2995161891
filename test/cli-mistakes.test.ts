// Mistakes get the promised answer (issue 15): usage errors exit 64 with one line, configuration problems exit 78
// naming the variable without a stack trace, a database that is away exits 75 naming DATABASE_URL, and the
// commands say what happened. Real child processes of `node src/cli.ts`, a real PostgreSQL and the Graph simulator.

import assert from "node:assert/strict";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, test } from "node:test";

import pg from "pg";

import { type Simulator, startSimulator } from "../src/simulator/server.ts";
import { unprivilegedAccount } from "./helpers/accounts.ts";
import { daemonEnv, type Finished, runCli } from "./helpers/daemon.ts";
import { simulatorSuite } from "./helpers/db.ts";
import { freePort } from "./helpers/global-setup.ts";

let sim: Simulator;
const { fresh } = simulatorSuite(
  () => startSimulator({ seed: 15, users: 10, signInsPerUserPerDay: 24, historyDays: 2 }),
  (s) => (sim = s),
  { migrate: false },
);
const PATH = process.env.PATH ?? "";
const base = () => ({ PATH, HOME: process.env.HOME ?? "/tmp" });

let scratch: string | undefined;
async function scratchDir(): Promise<string> {
  scratch ??= await mkdtemp(path.join(tmpdir(), "signin-mistakes-"));
  return scratch;
}
after(async () => {
  if (scratch) {
    await rm(scratch, { recursive: true, force: true });
  }
});

function noStack(result: Finished): void {
  const all = result.stdout + result.stderr;
  assert.ok(!/\n\s+at /.test(all) && !all.includes('"stack"'), `no stack trace in:\n${all}`);
}

/** A configuration problem: exit 78, the variable named, no stack trace, no retry loop. */
function assertConfigProblem(result: Finished, variable: string): void {
  assert.equal(result.code, 78, result.stdout + result.stderr);
  assert.ok(result.stderr.includes(variable), `${variable} named in: ${result.stderr}`);
  noStack(result);
  assert.ok(!(result.stdout + result.stderr).includes("database not reachable yet"), "not retried");
}

function listen(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve(server));
  });
}

test("unknown flags, commands and arguments are usage errors: exit 64, one line naming it and the usage", async () => {
  for (const [args, named] of [
    [["status", "--jsn"], "--jsn"],
    [["backfill", "--concurency", "12"], "--concurency"],
    [["export", "--frm", "7d"], "--frm"],
    [["check", "--json", "extra"], "extra"],
    [["once", "-x"], "-x"],
    [["import", "--tenant"], "--tenant"],
  ] as const) {
    const result = await runCli([...args], base());
    assert.equal(result.code, 64, `${args.join(" ")}: ${result.stderr}`);
    const lines = result.stderr.trimEnd().split("\n");
    assert.equal(lines.length, 1, `one line: ${result.stderr}`);
    assert.ok(lines[0]?.includes(named), `${named} named: ${lines[0]}`);
    assert.ok(lines[0]?.includes(`usage: node src/cli.ts ${args[0]}`), `usage given: ${lines[0]}`);
    assert.equal(result.stdout, "");
  }
  const unknown = await runCli(["frobnicate"], base());
  assert.equal(unknown.code, 64);
  assert.match(unknown.stderr, /^unknown command "frobnicate"; commands: run, once, backfill/);
  assert.equal(unknown.stderr.trimEnd().split("\n").length, 1);
});

test("`backfill --from 1` is a usage error, not 2001-01-01; Graph is not called", async () => {
  const db = await fresh();
  sim.resetRequests();
  for (const from of ["1", "March 1", "yesterday"]) {
    const result = await runCli(["backfill", "--from", from], daemonEnv(sim, db.url));
    assert.equal(result.code, 64, result.stdout + result.stderr);
    assert.ok(result.stderr.includes(`--from ${from} is not an ISO-8601 time`), result.stderr);
  }
  const concurrency = await runCli(["backfill", "--from", "2h", "--concurrency", "6x"], daemonEnv(sim, db.url));
  assert.equal(concurrency.code, 64);
  assert.match(concurrency.stderr, /--concurrency 6x must be a whole number/);
  assert.equal(sim.requests().length, 0);
});

test("DATA_DIR that is a file, below a file, on /proc or unwritable: 78 naming DATA_DIR, at once", async () => {
  const dir = await scratchDir();
  const file = path.join(dir, "a-file");
  await writeFile(file, "x");
  for (const dataDir of [file, path.join(file, "sub"), "/proc/signin-ingest-test"]) {
    const result = await runCli(["status"], { ...base(), DATA_DIR: dataDir });
    assertConfigProblem(result, "DATA_DIR");
  }
  const proc = await runCli(["once"], { ...base(), DATA_DIR: "/proc/x", ...daemonEnvWithout(sim) });
  assertConfigProblem(proc, "DATA_DIR");
  assert.match(proc.stderr, /pseudo file system/);
});

// Root writes anywhere: run as root (CI), the CLI runs as an unprivileged account (nobody or postgres) instead.
const runAs = process.getuid?.() === 0 ? await unprivilegedAccount() : undefined;
after(async () => {
  if (runAs && "cleanup" in runAs) {
    await runAs.cleanup();
  }
});

test(
  `an unwritable DATA_DIR: 78 naming DATA_DIR${runAs && "name" in runAs ? ` (run as ${runAs.name}, as the tests run as root)` : ""}`,
  { skip: runAs !== undefined && "none" in runAs && `run as root and ${runAs.none}` },
  async () => {
    const scratchFolder = await scratchDir();
    await chmod(scratchFolder, 0o755); // the account must reach it, and not write what is inside
    const dir = path.join(scratchFolder, "read-only");
    await mkdir(dir);
    await chmod(dir, 0o555);
    const as = runAs && "uid" in runAs ? runAs : undefined;
    const result = await runCli(["status"], { ...base(), DATA_DIR: path.join(dir, "data") }, as);
    assertConfigProblem(result, "DATA_DIR");
    assert.match(result.stderr, /data\/?"? cannot be created: .*read-only is not writable by this user \(EACCES\)/);
  },
);

/** The simulator's tenant and credentials, without a database (DATA_DIR decides). */
function daemonEnvWithout(s: Simulator): Record<string, string> {
  const { DATABASE_URL: _, ...env } = daemonEnv(s, "postgres://unused");
  return env;
}

test("DATABASE_URL: a bad URL, a wrong password, a missing database are 78 naming DATABASE_URL, never retried", async (t) => {
  const db = await fresh();
  const url = new URL(db.url);
  const wrongPassword = new URL(db.url);
  wrongPassword.password = "not-the-password";
  const missing = new URL(db.url);
  missing.pathname = "/no_such_database";
  // A server with trust authentication (TEST_DATABASE_URL at a local server) accepts any password.
  const probe = new pg.Client({ connectionString: wrongPassword.toString() });
  const refusesWrongPassword = await probe.connect().then(
    () => false,
    () => true,
  );
  await probe.end().catch(() => undefined);
  if (!refusesWrongPassword) {
    t.diagnostic("this server accepts any password (trust authentication): the wrong-password case is not run");
  }
  for (const [databaseUrl, says] of [
    ["postgres://user:p@ss@[bad", /not a valid URL/],
    ...(refusesWrongPassword ? ([[wrongPassword.toString(), /refuses the password \(SQLSTATE 28P01/]] as const) : []),
    [missing.toString(), /does not exist \(SQLSTATE 3D000/],
  ] as const) {
    for (const command of ["status", "once"]) {
      const result = await runCli([command], daemonEnv(sim, databaseUrl, { DATABASE_WAIT: "30s" }));
      assertConfigProblem(result, "DATABASE_URL");
      assert.match(result.stderr, says);
      assert.ok(!result.stderr.includes("not-the-password"), "the password is never shown");
    }
  }
  if (refusesWrongPassword) {
    assert.ok(url.password !== "", "the test database has a password, so 28P01 was the server's answer");
  }
});

test("a closed DATABASE_URL port: short retry lines without stacks, then 75 naming DATABASE_URL", async () => {
  const port = await freePort();
  const result = await runCli(["status"], { ...base(), DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/x` });
  assert.equal(result.code, 75, result.stderr);
  noStack(result);
  const lines = result.stderr
    .trimEnd()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const retries = lines.filter((l) => l.msg === "database not reachable yet");
  assert.ok(retries.length >= 1 && retries.every((l) => l.code === "ECONNREFUSED" && !("err" in l)));
  const last = lines.at(-1);
  assert.equal(last?.exitCode, 75);
  assert.match(
    String(last?.error),
    new RegExp(`PostgreSQL at 127\\.0\\.0\\.1:${port} \\(DATABASE_URL\\) did not answer`),
  );
});

test("METRICS_PORT in use: `run` exits 78 naming METRICS_PORT", async () => {
  const db = await fresh();
  const port = await freePort();
  const server = await listen(port);
  try {
    const result = await runCli(
      ["run"],
      daemonEnv(sim, db.url, { METRICS_PORT: String(port), METRICS_HOST: "127.0.0.1" }),
    );
    assertConfigProblem(result, "METRICS_PORT");
    assert.match(result.stderr, /already in use by another process \(EADDRINUSE\)/);
  } finally {
    server.close();
  }
});

test("EMBEDDED_PG_PORT in use: 78 naming EMBEDDED_PG_PORT and the server log", async () => {
  const dir = await mkdtemp(path.join(tmpdir(), "signin-embedded-port-"));
  const port = await freePort();
  const server = await listen(port);
  try {
    const result = await runCli(["status"], { ...base(), DATA_DIR: dir, EMBEDDED_PG_PORT: String(port) });
    assertConfigProblem(result, "EMBEDDED_PG_PORT");
    assert.ok(result.stderr.includes(path.join(dir, "pg", "server.log")), result.stderr);
  } finally {
    server.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test("settings: POLL_SCHEDULE out of range is refused; a bad AZURE_CLIENT_ID is reported once", async () => {
  const result = await runCli(
    ["once"],
    daemonEnv(sim, "postgres://unused@127.0.0.1/x", { POLL_SCHEDULE: "*/61 * * * *", AZURE_CLIENT_ID: "xyz" }),
  );
  assertConfigProblem(result, "POLL_SCHEDULE");
  assert.match(result.stderr, /POLL_SCHEDULE: "\*\/61 \* \* \* \*" has the step \/61 in the minute field/);
  assert.equal(result.stderr.split("AZURE_CLIENT_ID").length - 1, 1, result.stderr);
});

test("DATABASE_URL_FILE: read (trimmed) at start; both set, or unreadable, is 78", async () => {
  const db = await fresh();
  const dir = await scratchDir();
  const file = path.join(dir, "database-url");
  await writeFile(file, `  ${db.url}\n`);
  const ok = await runCli(["migrate"], { ...base(), DATABASE_URL_FILE: file });
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  const both = await runCli(["migrate"], { ...base(), DATABASE_URL_FILE: file, DATABASE_URL: db.url });
  assertConfigProblem(both, "DATABASE_URL and DATABASE_URL_FILE are both set");
  const unreadable = await runCli(["migrate"], { ...base(), DATABASE_URL_FILE: path.join(dir, "missing") });
  assertConfigProblem(unreadable, "DATABASE_URL_FILE");
});

test("`import --tenant X` needs no AZURE_TENANT_ID; `export --tenant nosuch` says nothing matched and exits 66", async () => {
  const db = await fresh();
  const env = { ...base(), DATABASE_URL: db.url };
  const fixture = new URL("./fixtures/SigninActivities1.json", import.meta.url).pathname;
  const imported = await runCli(["import", "--tenant", sim.tenantId, fixture], env);
  assert.equal(imported.code, 0, imported.stdout + imported.stderr);
  assert.match(imported.stdout, new RegExp(`tenant ${sim.tenantId}: 1 file`));

  const none = await runCli(["export", "--tenant", "nosuch", "--from", "30d"], env);
  assert.equal(none.code, 66, none.stderr);
  assert.match(none.stderr, /export: nothing matched: tenant nosuch has no stored events/);
  assert.equal(none.stdout, "");

  const empty = await runCli(["export", "--tenant", sim.tenantId, "--from", "1h"], env);
  assert.equal(empty.code, 0, empty.stderr);
  assert.match(empty.stderr, /export: nothing matched: no sign-in events of tenant/);
});

test("`once` with a wrong secret: 78, and it does not promise a next tick", async () => {
  const db = await fresh();
  const result = await runCli(["once"], daemonEnv(sim, db.url, { AZURE_CLIENT_SECRET: "wrong" }));
  assert.equal(result.code, 78, result.stdout + result.stderr);
  const all = result.stdout + result.stderr;
  assert.ok(!all.includes("next tick"), all);
  assert.ok(result.logs.some((l) => String(l.msg).startsWith("cycle failed: fix the configuration or credential")));
});

test("`check`: a 503 during the retention probe is temporary (75), with no advice to change GRAPH_RETENTION", async () => {
  const db = await fresh();
  sim.setFaults([]);
  sim.resetRequests();
  // Graph request 1 is the stream probe; 2 and its retries are the retention probe.
  sim.setFaults([{ match: { from: 2, to: 100 }, kind: "status", status: 503 }]);
  try {
    const result = await runCli(["check", "--json"], daemonEnv(sim, db.url, { MAX_RETRIES: "6" }));
    assert.equal(result.code, 75, result.stdout + result.stderr);
    const [tenant] = JSON.parse(result.stdout) as Array<{
      items: Array<{ name: string; ok: boolean; fix?: string; temporary?: boolean }>;
    }>;
    const retention = tenant?.items.find((i) => i.name === "retention");
    assert.equal(retention?.ok, false);
    assert.equal(retention?.temporary, true);
    assert.ok(!retention?.fix?.includes("GRAPH_RETENTION"), retention?.fix);
    // A preflight retries at most twice, whatever MAX_RETRIES says.
    assert.equal(sim.requests().filter((r) => r.path.includes("/auditLogs/")).length, 1 + 3);
  } finally {
    sim.setFaults([]);
  }
});

test("`check` without network (a host that does not resolve) fails fast with 75", async () => {
  const db = await fresh();
  const result = await runCli(
    ["check", "--json"],
    daemonEnv(sim, db.url, {
      AZURE_AUTHORITY_HOST: "https://login.signin-ingest-test.invalid",
      GRAPH_ENDPOINT: "https://graph.signin-ingest-test.invalid",
      RETRY_BASE_DELAY: "30s",
      MAX_RETRIES: "6",
    }),
  );
  assert.equal(result.code, 75, result.stdout + result.stderr);
  const [tenant] = JSON.parse(result.stdout) as Array<{ items: Array<{ name: string; temporary?: boolean }> }>;
  assert.deepEqual(
    tenant?.items.map((i) => [i.name, i.temporary]),
    [["token", true]],
  );
});

test("progress of `once` on stderr when PROGRESS=on (as on a terminal); none when off", async () => {
  const db = await fresh();
  sim.setFaults([]);
  const on = await runCli(["once"], daemonEnv(sim, db.url, { PROGRESS: "on", PAGE_SIZE: "50" }));
  assert.equal(on.code, 0, on.stderr);
  const cycle = on.logs.find((l) => l.msg === "cycle complete");
  const final = on.stderr.split("\r\x1b[2K").at(-1) ?? "";
  assert.match(
    final,
    /^once · streams 1\/1 done · \d+ windows? · [\d,]+ events \([\d,]+ new\) · [\d,]+ pages · [\d,]+ ev\/s · done in /,
  );
  assert.ok(final.includes(`(${Number(cycle?.inserted).toLocaleString("en-US")} new)`), final);
  assert.ok(final.includes(` · ${Number(cycle?.windows)} window`), final);
  assert.ok(!on.stderr.includes('"level"'), "no JSON on the progress line's stream");
  assert.ok(final.endsWith("\n"));
  const off = await runCli(["once"], daemonEnv(sim, db.url, { PROGRESS: "off" }));
  assert.equal(off.code, 0);
  assert.ok(!off.stderr.includes("once ·"));
});

test("`backfill` splits windows at MAX_PAGES_PER_WINDOW like the daemon", async () => {
  const db = await fresh();
  sim.setFaults([]);
  const now = sim.now().getTime();
  const args = [
    "backfill",
    "--from",
    new Date(Math.floor((now - 20 * 3_600_000) / 1000) * 1000).toISOString(),
    "--to",
    new Date(Math.floor((now - 3_600_000) / 1000) * 1000).toISOString(),
    "--slice",
    "24h",
    "--concurrency",
    "1",
  ];
  const capped = await runCli(
    args,
    daemonEnv(sim, db.url, { PAGE_SIZE: "5", MAX_PAGES_PER_WINDOW: "2", PROGRESS: "on" }),
  );
  assert.equal(capped.code, 0, capped.stderr);
  const done = capped.logs.find((l) => l.msg === "backfill complete");
  assert.ok(Number(done?.splits) > 0, `split at 2 pages: ${JSON.stringify(done)}`);
  // PROGRESS=on: the progress line on stderr instead of `backfill progress` log lines.
  assert.match(capped.stderr.split("\r\x1b[2K").at(-1) ?? "", /^slices (\d+)\/\1 · 100\.0% of .* · done in /);
  assert.ok(!capped.logs.some((l) => l.msg === "backfill progress"));
});
