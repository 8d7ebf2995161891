// Shared setup of the import tests: a temporary directory for input files and fresh databases, both removed after
// the file's tests, and the ImportDeps of one tenant at a fixed time.

import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before } from "node:test";

import type { ImportDeps } from "../../src/io/import.ts";
import { createTestDatabase, silentLog, type TestDatabase } from "./db.ts";

export interface ImportBed {
  /** The temporary directory (set once the file's `before` hook ran). */
  dir: () => string;
  fresh: () => Promise<TestDatabase>;
  deps: (db: TestDatabase, extra?: Partial<ImportDeps>) => ImportDeps;
  tmpFile: (name: string, content: string | Buffer) => Promise<string>;
}

export function importBed(tenantId: string, now: Date): ImportBed {
  let dir = "";
  const databases: TestDatabase[] = [];
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "signin-import-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
    await Promise.all(databases.map((d) => d.drop()));
  });
  return {
    dir: () => dir,
    fresh: async () => {
      const db = await createTestDatabase();
      databases.push(db);
      return db;
    },
    deps: (db, extra = {}) => ({ pool: db.pool, log: silentLog, tenantId, now: () => now, ...extra }),
    tmpFile: async (name, content) => {
      const file = path.join(dir, name);
      await writeFile(file, content);
      return file;
    },
  };
}
