// node --test global setup: gives every test process a PostgreSQL. TEST_DATABASE_URL wins when set; otherwise an
// embedded PostgreSQL is started in a temporary directory for the whole run and removed afterwards. Either way a
// template database is migrated once, and every test database is a copy of it (test/helpers/db.ts).

import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";

import { type EmbeddedDatabase, startEmbeddedPostgres } from "../../src/store/embedded.ts";
import { createTemplateDatabase, dropTemplateDatabase, TEMPLATE_ENV } from "./db.ts";

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

export async function globalSetup(): Promise<void> {
  if (!process.env.TEST_DATABASE_URL) {
    dir = await mkdtemp(path.join(tmpdir(), "signin-ingest-test-"));
    embedded = await startEmbeddedPostgres({ dir, port: await freePort() });
    process.env.TEST_DATABASE_URL = embedded.url;
  }
  const url = process.env.TEST_DATABASE_URL;
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
