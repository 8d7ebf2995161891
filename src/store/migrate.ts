// Applies the forward-only SQL migrations in migrations/ through node-pg-migrate (its advisory lock and order check).

import { fileURLToPath } from "node:url";

import { runner } from "node-pg-migrate";

import type { Logger } from "../log.ts";

export const MIGRATIONS_DIR = fileURLToPath(new URL("../../migrations", import.meta.url));

/** Applies pending migrations; returns the names applied. Safe to run from several processes at once. */
export async function migrate(databaseUrl: string, log: Logger): Promise<string[]> {
  const applied = await runner({
    databaseUrl: { connectionString: databaseUrl, application_name: "signin-ingest-migrate" },
    dir: MIGRATIONS_DIR,
    direction: "up",
    migrationsTable: "schema_migrations",
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
