// Applies the forward-only SQL migrations in migrations/ through node-pg-migrate (its advisory lock and order check).
// node-pg-migrate (with its TypeScript loader and glob) is loaded only when a migration is pending: a daemon that
// starts on an up-to-date schema, the usual case, does not keep it in memory.

import { readdir } from "node:fs/promises";
import { basename, extname } from "node:path";
import { fileURLToPath } from "node:url";

import pg from "pg";

import type { Logger } from "../log.ts";

export const MIGRATIONS_DIR = fileURLToPath(new URL("../../migrations", import.meta.url));
const MIGRATIONS_TABLE = "schema_migrations";
const APPLICATION_NAME = "signin-ingest-migrate";

/** Applies pending migrations; returns the names applied. Safe to run from several processes at once. */
export async function migrate(databaseUrl: string, log: Logger): Promise<string[]> {
  if (await upToDate(databaseUrl)) {
    return [];
  }
  const { runner } = await import("node-pg-migrate");
  const applied = await runner({
    databaseUrl: { connectionString: databaseUrl, application_name: APPLICATION_NAME },
    dir: MIGRATIONS_DIR,
    direction: "up",
    migrationsTable: MIGRATIONS_TABLE,
    checkOrder: true,
    singleTransaction: true,
    advisoryLockMode: "wait",
    log: (message: string) => log.debug({ migration: message }, "migration"),
  });
  const names = applied.map((m) => m.name);
  if (names.length > 0) {
    log.info({ applied: names }, "migrations applied");
  }
  return names;
}

/**
 * True when the database records every file of migrations/ as applied, in file order: node-pg-migrate would find
 * nothing to do. Anything else (no table yet, a pending or out-of-order migration, an error) is left to it.
 */
async function upToDate(databaseUrl: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: APPLICATION_NAME });
  try {
    const files = (await readdir(MIGRATIONS_DIR, { withFileTypes: true }))
      .filter((f) => (f.isFile() || f.isSymbolicLink()) && !f.name.startsWith("."))
      .map((f) => basename(f.name, extname(f.name)))
      .sort();
    await client.connect();
    const { rows } = await client.query<{ name: string }>(
      `select name from public.${MIGRATIONS_TABLE} order by run_on, id`,
    );
    return files.every((name, i) => rows[i]?.name === name);
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}
