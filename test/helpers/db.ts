// A fresh, migrated database per test file (or per test), dropped afterwards, on the run's PostgreSQL.

import { randomBytes } from "node:crypto";
import { after, before } from "node:test";

import pg from "pg";
import { pino } from "pino";

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

export async function createTestDatabase(options: { migrate?: boolean } = {}): Promise<TestDatabase> {
  const name = `signin_test_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: baseUrl() });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = withDatabase(baseUrl(), name);
  if (options.migrate !== false) {
    await migrate(url, silentLog);
  }
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  pool.on("error", () => undefined);
  return {
    url,
    pool,
    drop: async () => {
      await pool.end();
      const client = new pg.Client({ connectionString: baseUrl() });
      await client.connect();
      try {
        await client.query(`drop database if exists ${name} with (force)`);
      } finally {
        await client.end();
      }
    },
  };
}

/**
 * The scaffold most test files share: one simulator for the file (handed to `use` once started) and fresh
 * databases on demand, all closed and dropped after the file's tests.
 */
export function simulatorSuite<S extends { close(): Promise<void> }>(
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
