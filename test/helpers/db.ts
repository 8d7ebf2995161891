// A fresh, migrated database per test file (or per test), dropped afterwards, on the run's PostgreSQL.

import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { after, afterEach, before } from "node:test";

import pg from "pg";
import { pino } from "pino";

import { isAlive } from "../../src/store/embedded.ts";
import { migrate } from "../../src/store/migrate.ts";

export interface TestDatabase {
  url: string;
  pool: pg.Pool;
  drop(): Promise<void>;
}

function baseUrl(): string {
  const url = process.env.TEST_DATABASE_URL;
  if (!url) {
    throw new Error("TEST_DATABASE_URL is not set: run tests with `npm test` (its global setup starts PostgreSQL)");
  }
  return url;
}

function withDatabase(url: string, name: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${name}`;
  return parsed.toString();
}

export const silentLog = pino({ level: "silent" });

/** Set by the global setup: a database migrated once, that createTestDatabase copies (CREATE DATABASE … TEMPLATE). */
export const TEMPLATE_ENV = "TEST_TEMPLATE_DATABASE";

/**
 * Creates and migrates the template the run's test databases are copied from (graphile-worker's approach): each
 * copy is a file-level clone, instead of ~25 migrations per database. It accepts no connections afterwards, so a
 * copy never finds it in use. Returns its name.
 */
export async function createTemplateDatabase(url: string): Promise<string> {
  const name = `signin_template_${randomBytes(6).toString("hex")}`;
  await withAdmin(url, async (admin) => {
    await admin.query(`create database ${name}`);
    await admin.query(`comment on database ${name} is '${templateComment(process.pid)}'`);
  });
  await migrate(withDatabase(url, name), silentLog);
  await withAdmin(url, (admin) => admin.query(`alter database ${name} is_template true allow_connections false`));
  return name;
}

/** Who made a template: the run's process on this host (a server may be shared by several machines' runs). */
function templateComment(pid: number): string {
  return `signin-ingest test template of pid ${String(pid)} on ${hostname().replaceAll("'", "")}`;
}

const TEMPLATES = `
select d.datname as name, shobj_description(d.oid, 'pg_database') as comment
from pg_database d where d.datname like 'signin\\_template\\_%' and d.datistemplate`;

/**
 * Drops the templates of this host's earlier runs whose process is gone. A run against a server of its own
 * (TEST_DATABASE_URL) drops its template in globalTeardown, which `--test-force-exit` cuts short (the runner exits
 * while the teardown still awaits), and a killed run never gets there: each left a migrated database behind.
 */
export async function dropLeftoverTemplates(url: string): Promise<void> {
  const { rows } = await withAdmin(url, (admin) => admin.query<{ name: string; comment: string | null }>(TEMPLATES));
  for (const { name, comment } of rows) {
    const pid = Number(/ of pid (\d+) on /.exec(comment ?? "")?.[1]);
    if (Number.isInteger(pid) && comment === templateComment(pid) && !isAlive(pid)) {
      await dropTemplateDatabase(url, name);
    }
  }
}

export async function dropTemplateDatabase(url: string, name: string): Promise<void> {
  await withAdmin(url, async (admin) => {
    await admin.query(`alter database ${name} is_template false`);
    await admin.query(`drop database if exists ${name} with (force)`);
  });
}

async function withAdmin<T>(url: string, work: (admin: pg.Client) => Promise<T>): Promise<T> {
  const admin = new pg.Client({ connectionString: url, application_name: "signin-ingest-tests" });
  await admin.connect();
  try {
    return await work(admin);
  } finally {
    await admin.end();
  }
}

/** Per-database settings (ALTER DATABASE … SET, e.g. jit = off from migration 0016) are not copied by TEMPLATE. */
const COPY_DATABASE_SETTINGS = `
select unnest(s.setconfig) as setting
from pg_db_role_setting s join pg_database d on d.oid = s.setdatabase
where d.datname = $1 and s.setrole = 0`;

/** How long dropping a test database may take before the run's sessions are printed (what it waits for). */
const DROP_WATCH_MS = 20_000;
/** After this the drop is given up with a warning: a leftover database is harmless, a hung run is not. */
const DROP_TIMEOUT_MS = 120_000;

const ACTIVITY = `
select pid, datname, application_name, backend_type, state, wait_event_type, wait_event,
       now() - state_change as in_state, left(query, 120) as query
from pg_stat_activity where pid <> pg_backend_pid() order by datname nulls first, pid`;

/**
 * DROP DATABASE … WITH (FORCE), bounded. It can wait on things outside the test (a backend holding the database's
 * lock while it starts, a ProcSignalBarrier a backend blocked on a client socket does not absorb): after
 * DROP_WATCH_MS the cluster's sessions are printed to stderr, after DROP_TIMEOUT_MS it is given up with a warning.
 */
async function dropDatabase(name: string): Promise<void> {
  const url = baseUrl();
  await withAdmin(url, async (admin) => {
    await admin.query(`set statement_timeout = ${DROP_TIMEOUT_MS}`);
    const watch = setTimeout(() => {
      void withAdmin(url, (observer) => observer.query(ACTIVITY))
        .then(({ rows }) =>
          console.error(
            `test database ${name}: DROP DATABASE still waiting after ${DROP_WATCH_MS} ms; sessions:\n` +
              rows.map((r) => JSON.stringify(r)).join("\n"),
          ),
        )
        .catch((err: unknown) => console.error(`test database ${name}: could not list sessions`, err));
    }, DROP_WATCH_MS);
    try {
      await admin.query(`drop database if exists ${name} with (force)`);
    } catch (err) {
      console.error(`test database ${name} left behind: DROP DATABASE failed`, err);
    } finally {
      clearTimeout(watch);
    }
  });
}

export async function createTestDatabase(options: { migrate?: boolean } = {}): Promise<TestDatabase> {
  const name = `signin_test_${randomBytes(6).toString("hex")}`;
  const template = options.migrate === false ? undefined : process.env[TEMPLATE_ENV];
  await withAdmin(baseUrl(), async (admin) => {
    if (template) {
      await admin.query(`create database ${name} template ${template}`);
      const { rows } = await admin.query<{ setting: string }>(COPY_DATABASE_SETTINGS, [template]);
      for (const { setting } of rows) {
        const [key, ...value] = setting.split("=");
        await admin.query(`alter database ${name} set ${key} = '${value.join("=").replaceAll("'", "''")}'`);
      }
    } else {
      await admin.query(`create database ${name}`);
    }
  });
  const url = withDatabase(baseUrl(), name);
  if (options.migrate !== false && !template) {
    await migrate(url, silentLog);
  }
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  pool.on("error", () => undefined);
  return {
    url,
    pool,
    drop: async () => {
      await pool.end();
      await dropDatabase(name);
    },
  };
}

/**
 * The scaffold most test files share: one simulator for the file (handed to `use` once started; reset to how it
 * started after each test) and fresh databases on demand, all closed and dropped after the file's tests.
 */
export function simulatorSuite<S extends { close(): Promise<void>; reset?(): void }>(
  start: () => Promise<S>,
  use: (sim: S) => void,
  options: { migrate?: boolean } = {},
): { fresh: () => Promise<TestDatabase> } {
  let sim: S | undefined;
  const databases: TestDatabase[] = [];
  before(async () => {
    sim = await start();
    use(sim);
  });
  // What a test set on the simulator (a mode, faults, a clock offset) ends with it, even when an assertion failed.
  afterEach(() => sim?.reset?.());
  after(async () => {
    await sim?.close();
    await Promise.all(databases.map((d) => d.drop()));
  });
  return {
    fresh: async () => {
      const db = await createTestDatabase(options);
      databases.push(db);
      return db;
    },
  };
}
