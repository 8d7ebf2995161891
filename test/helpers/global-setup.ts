// node --test global setup: gives every test process a PostgreSQL. TEST_DATABASE_URL wins when set; otherwise an
// embedded PostgreSQL is started in a temporary directory for the whole run and removed afterwards. Either way a
// template database is migrated once, and every test database is a copy of it (test/helpers/db.ts).

import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";

import {
  type EmbeddedDatabase,
  isAlive,
  ownerPid,
  runningServer,
  startEmbeddedPostgres,
} from "../../src/store/embedded.ts";
import { createTemplateDatabase, dropLeftoverTemplates, dropTemplateDatabase, TEMPLATE_ENV } from "./db.ts";

let embedded: EmbeddedDatabase | undefined;
let dir: string | undefined;
let template: { url: string; name: string } | undefined;

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

const CLUSTER_PREFIX = "signin-ingest-test-";
/** A directory younger than this may belong to a run still initialising its cluster (no server, no owner yet). */
const LEFTOVER_AGE_MS = 15 * 60_000;

/**
 * Removes earlier runs' embedded clusters (~80 MB each): `--test-force-exit` ends the runner while globalTeardown
 * still awaits the server's stop, so the directory stayed behind after every run, and a killed run leaves its own.
 * A directory is kept while its server runs, its owner lives, or it is too young to tell.
 */
async function removeLeftoverClusters(now: number): Promise<void> {
  for (const name of await readdir(tmpdir())) {
    if (!name.startsWith(CLUSTER_PREFIX)) {
      continue;
    }
    const leftover = path.join(tmpdir(), name);
    const owner = await ownerPid(leftover);
    const young = await stat(leftover).then(
      (s) => now - s.mtimeMs < LEFTOVER_AGE_MS,
      () => true,
    );
    if (young || (owner !== undefined && isAlive(owner)) || (await runningServer(path.join(leftover, "pg")))) {
      continue;
    }
    await rm(leftover, { recursive: true, force: true }).catch((error: unknown) =>
      console.error(`global setup: could not remove the leftover cluster ${leftover}`, error),
    );
  }
}

export async function globalSetup(): Promise<void> {
  if (!process.env.TEST_DATABASE_URL) {
    await removeLeftoverClusters(Date.now());
    dir = await mkdtemp(path.join(tmpdir(), CLUSTER_PREFIX));
    embedded = await startEmbeddedPostgres({ dir, port: await freePort() });
    process.env.TEST_DATABASE_URL = embedded.url;
  }
  const url = process.env.TEST_DATABASE_URL;
  if (!embedded) {
    await dropLeftoverTemplates(url);
  }
  template = { url, name: await createTemplateDatabase(url) };
  process.env[TEMPLATE_ENV] = template.name;
}

export async function globalTeardown(): Promise<void> {
  if (template && !embedded) {
    await dropTemplateDatabase(template.url, template.name);
  }
  await embedded?.stop();
  if (dir) {
    await rm(dir, { recursive: true, force: true });
  }
}
