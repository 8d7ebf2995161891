// The compose roles for real (issue 15): ops/compose/postgres-init/10-roles.sh run as the postgres image runs its
// docker-entrypoint-initdb.d scripts (the database POSTGRES_DB created first, then the script with POSTGRES_USER,
// POSTGRES_DB and libpq's environment), on a new PostgreSQL cluster, with the passwords ops/compose/secrets.sh
// writes; then the daemon, started through the compose entrypoint step (ops/compose/file-env.sh, PGPASSWORD_FILE),
// migrates and ingests as signin_ingest, which is no superuser. And ops/compose/upgrade-old-volume.sh on a cluster
// made as the old compose file made it (bootstrap superuser `signin`, the daemon's tables its own).

import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";

import pg from "pg";

import { type Simulator, startSimulator } from "../src/simulator/server.ts";
import { type EmbeddedDatabase, startEmbeddedPostgres } from "../src/store/embedded.ts";
import { CLI, clockEnv, daemonEnv, type Finished } from "./helpers/daemon.ts";
import { freePort } from "./helpers/global-setup.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const COMPOSE = path.join(ROOT, "ops", "compose");

function hasPsql(): boolean {
  try {
    execFileSync("psql", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false; // PostgreSQL's client is not installed (.ci/run installs postgresql-client)
  }
}
const skip = !hasPsql() && "psql (postgresql-client) is not installed: the init scripts run it";

let sim: Simulator | undefined;
const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) {
    await cleanup();
  }
  await sim?.close();
});

async function simulator(): Promise<Simulator> {
  sim ??= await startSimulator({ seed: 17, users: 8, signInsPerUserPerDay: 24, historyDays: 2 });
  return sim;
}

interface Cluster {
  embedded: EmbeddedDatabase;
  port: number;
  /** The superuser's password (libpq's PGPASSWORD for the scripts). */
  password: string;
  /** A connection string for `user` (with `password`) to `database`. */
  url(user: string, password: string, database?: string): string;
}

/** A new PostgreSQL cluster in a temporary folder, removed (and stopped) after the file's tests. */
async function cluster(superuser: string): Promise<Cluster> {
  const dir = await mkdtemp(path.join(tmpdir(), "signin-compose-"));
  await chmod(dir, 0o755); // run as root, PostgreSQL runs as `postgres`, which must reach it
  const port = await freePort();
  const embedded = await startEmbeddedPostgres({ dir, port, superuser });
  cleanups.push(async () => {
    await embedded.stop();
    await rm(dir, { recursive: true, force: true });
  });
  const password = decodeURIComponent(new URL(embedded.url).password);
  return {
    embedded,
    port,
    password,
    url: (user, secret, database = "signin") =>
      `postgres://${encodeURIComponent(user)}:${encodeURIComponent(secret)}@127.0.0.1:${String(port)}/${database}`,
  };
}

/** The `secrets` service's volume (ops/compose/secrets.sh), every folder ours; `given` as in .env. */
async function secrets(given: Record<string, string> = {}): Promise<{ dir: string; read(file: string): string }> {
  const dir = await mkdtemp(path.join(tmpdir(), "signin-compose-secrets-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const owner = `${String(process.getuid?.() ?? 0)}:${String(process.getgid?.() ?? 0)}`;
  execFileSync("/bin/sh", [path.join(COMPOSE, "secrets.sh")], {
    env: {
      PATH: process.env.PATH ?? "",
      SECRETS_DIR: dir,
      SECRETS_OWNERS: `postgres=${owner} grafana=${owner} daemon=${owner}`,
      ...given,
    },
    stdio: "ignore",
  });
  return { dir, read: (file) => readFileSync(path.join(dir, file), "utf8") };
}

async function query<T extends pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

/**
 * Runs a shell script with libpq's environment for `db`: as the image runs an executable init script, or `fromStdin`
 * as the README has the operator run one (`docker compose exec -T … sh -s < script`).
 */
function runScript(script: string, db: Cluster, env: Record<string, string>, fromStdin = false): string {
  return execFileSync("/bin/sh", fromStdin ? ["-s"] : [script], {
    encoding: "utf8",
    ...(fromStdin ? { input: readFileSync(script) } : {}),
    env: {
      PATH: process.env.PATH ?? "",
      PGHOST: "127.0.0.1",
      PGPORT: String(db.port),
      PGPASSWORD: db.password,
      ...env,
    },
  });
}

/** `node src/cli.ts <args>` as the compose service starts it: file-env.sh (then tini; here env) with PGPASSWORD_FILE. */
function composeDaemon(args: string[], env: Record<string, string>): Promise<Finished> {
  const child = spawn("/bin/sh", [path.join(COMPOSE, "file-env.sh"), process.execPath, CLI, ...args], {
    cwd: ROOT,
    // clockEnv: under faketime (.ci/calendar) the daemon must share the simulator's shifted clock.
    env: { ...clockEnv(), ...env, TINI: "/usr/bin/env" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  return new Promise((resolve) =>
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr, logs: [] })),
  );
}

const ATTRIBUTES = `select rolsuper, rolcreatedb, rolcreaterole from pg_roles where rolname = current_user`;
const SUPERUSER_OWNED = `
select count(*)::int as n from pg_class c join pg_roles o on o.oid = c.relowner
where c.relnamespace = 'public'::regnamespace and o.rolsuper`;
const OWNER = `select pg_get_userbyid(datdba) as owner from pg_database where datname = current_database()`;

/** The daemon's rights as signin_ingest: not a superuser, owns the database and its tables, makes and drops months. */
async function assertDaemonRole(db: Cluster, ingestPassword: string): Promise<void> {
  const url = db.url("signin_ingest", ingestPassword);
  assert.deepEqual(await query(url, ATTRIBUTES), [{ rolsuper: false, rolcreatedb: false, rolcreaterole: false }]);
  assert.deepEqual(await query(url, OWNER), [{ owner: "signin_ingest" }]);
  assert.deepEqual(await query(url, SUPERUSER_OWNED), [{ n: 0 }], "no table of a superuser's left");
  const [made] = await query<{ name: string }>(url, "select signin_ensure_partition('2031-05-15T00:00:00Z') as name");
  assert.ok(made?.name, "creates a month's partition");
  await query(url, `drop table ${made.name}`); // as retention does
}

test(
  "a new volume: 10-roles.sh as the image runs it; the daemon migrates and ingests as signin_ingest, no superuser",
  { skip },
  async () => {
    const s = await simulator();
    const db = await cluster("postgres");
    const volume = await secrets({ GRAFANA_DB_PASSWORD: "chosen-grafana" });
    // docker-entrypoint.sh: POSTGRES_DB is created before the init scripts run.
    await query(db.embedded.url, "create database signin");
    runScript(path.join(COMPOSE, "postgres-init", "10-roles.sh"), db, {
      POSTGRES_USER: "postgres",
      POSTGRES_DB: "signin",
      POSTGRES_PASSWORD: db.password,
      SECRETS_DIR: volume.dir,
    });

    const { DATABASE_URL: _, ...env } = daemonEnv(s, "unused");
    const once = await composeDaemon(["once"], {
      ...env,
      DATABASE_URL: `postgres://signin_ingest@127.0.0.1:${String(db.port)}/signin`,
      PGPASSWORD_FILE: path.join(volume.dir, "daemon", "db-password"),
    });
    assert.equal(once.code, 0, once.stdout + once.stderr);
    await assertDaemonRole(db, volume.read("daemon/db-password"));

    // Grafana's login (the secrets' password, as its data source reads it) sees the data and not the leases.
    const grafana = db.url("grafana", volume.read("grafana/db-password"));
    assert.equal(volume.read("grafana/db-password"), "chosen-grafana");
    const [{ n } = { n: 0 }] = await query<{ n: number }>(grafana, "select count(*)::int as n from sign_ins");
    assert.ok(n > 0, "the daemon ingested and Grafana reads it");
    await assert.rejects(query(grafana, "select * from stream_leases"), /permission denied/);
    assert.deepEqual(await query(grafana, "select current_setting('statement_timeout') as t"), [{ t: "1min" }]);
  },
);

test(
  "an old volume (daemon as the superuser signin): upgrade-old-volume.sh hands everything to signin_ingest, idempotently",
  { skip },
  async () => {
    const s = await simulator();
    // As the old compose file made it: POSTGRES_USER=signin (the bootstrap superuser), database signin, the old
    // init script's signin_reader and grafana (password "grafana"), the daemon migrating and ingesting as signin.
    const db = await cluster("signin");
    await query(db.embedded.url, "create database signin");
    const old = db.url("signin", db.password);
    await query(old, "create role signin_reader nologin");
    await query(old, "create role grafana login password 'grafana' in role signin_reader");
    const { DATABASE_URL: _, ...env } = daemonEnv(s, "unused");
    const before = await composeDaemon(["once"], { ...env, DATABASE_URL: old });
    assert.equal(before.code, 0, before.stdout + before.stderr);
    const [{ n: stored } = { n: 0 }] = await query<{ n: number }>(old, "select count(*)::int as n from sign_ins");
    assert.ok(stored > 0);
    assert.ok((await query<{ n: number }>(old, SUPERUSER_OWNED))[0]?.n, "the old daemon's tables are the superuser's");

    // The new compose file's first start writes the secrets; then the operator runs the script once (twice here).
    const volume = await secrets();
    const upgrade = (password: string) =>
      runScript(
        path.join(COMPOSE, "upgrade-old-volume.sh"),
        db,
        {
          PGUSER: "signin",
          PGPASSWORD: password,
          SECRETS_DIR: volume.dir,
        },
        true,
      );
    const first = upgrade(db.password);
    assert.match(first, /upgraded: signin_ingest owns database signin and \d+ objects in it/);
    // The old superuser's password is now the secret's; running again changes nothing more.
    const admin = volume.read("postgres/postgres-password");
    assert.equal(upgrade(admin), first);

    // The daemon as the new compose file starts it: migrations (none left), a cycle, as signin_ingest.
    const after = await composeDaemon(["once"], {
      ...env,
      DATABASE_URL: `postgres://signin_ingest@127.0.0.1:${String(db.port)}/signin`,
      PGPASSWORD_FILE: path.join(volume.dir, "daemon", "db-password"),
    });
    assert.equal(after.code, 0, after.stdout + after.stderr);
    await assertDaemonRole(db, volume.read("daemon/db-password"));
    // A table it creates (a later migration) is readable by Grafana, as the old superuser's were.
    await query(db.url("signin_ingest", volume.read("daemon/db-password")), "create table later_migration (x int)");

    const grafana = db.url("grafana", volume.read("grafana/db-password"));
    const [{ n } = { n: 0 }] = await query<{ n: number }>(grafana, "select count(*)::int as n from sign_ins");
    assert.ok(n >= stored, "Grafana reads with the secrets' password");
    assert.deepEqual(await query(grafana, "select count(*)::int as n from later_migration"), [{ n: 0 }]);
    await assert.rejects(query(db.url("grafana", "grafana"), "select 1"), /password authentication failed/);
    // The well-known passwords are gone; the administrators log in with the secret.
    await assert.rejects(query(db.url("signin", "signin"), "select 1"), /password authentication failed/);
    for (const superuser of ["signin", "postgres"]) {
      assert.deepEqual(
        await query(db.url(superuser, admin), "select rolsuper from pg_roles where rolname = current_user"),
        [{ rolsuper: true }],
      );
    }
  },
);
