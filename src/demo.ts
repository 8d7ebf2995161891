// `npm run demo`: the whole thing working without an Entra tenant or Docker. Starts the Graph simulator (a synthetic
// tenant) and a PostgreSQL (embedded under DATA_DIR, or DATABASE_URL), runs the real daemon (`src/cli.ts run`) against
// them on a short schedule, then prints the connection string and a few example queries with their results.

import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

import dotenv from "dotenv";
import pg from "pg";

import { ConfigError, EXIT } from "./errors.ts";
import { startSimulator } from "./simulator/server.ts";
import { DEMO_PG_PORT, type EmbeddedDatabase, startEmbeddedPostgres } from "./store/embedded.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CLI = path.join(ROOT, "src", "cli.ts");
const LIFELINE = path.join(ROOT, "src", "demo-lifeline.ts");

const DEMO_QUERIES: ReadonlyArray<{ title: string; sql: string }> = [
  {
    title: "Top failure reasons, last 24 hours",
    sql: `select status_error_code as code, status_failure_reason as reason, count(*) as failures
from sign_ins
where created_date_time > now() - interval '24 hours' and status_error_code <> 0
group by 1, 2 order by 3 desc limit 5`,
  },
  {
    title: "Sign-ins by country, last 7 days",
    sql: `select location_country_or_region as country, count(*) as sign_ins,
       count(*) filter (where status_error_code <> 0) as failed
from sign_ins
where created_date_time > now() - interval '7 days'
group by 1 order by 2 desc limit 8`,
  },
  {
    title: "Users still on legacy authentication (IMAP, POP, SMTP, ActiveSync …)",
    sql: `select user_principal_name as "user", client_app_used as protocol, count(*) as sign_ins
from sign_ins
where is_legacy_auth
group by 1, 2 order by 3 desc limit 8`,
  },
];

function cell(value: unknown): string {
  if (value === null || value === undefined) {
    return "";
  }
  if (value instanceof Date) {
    return value.toISOString();
  }
  if (
    typeof value === "string" ||
    typeof value === "number" ||
    typeof value === "boolean" ||
    typeof value === "bigint"
  ) {
    return String(value);
  }
  return JSON.stringify(value);
}

/** Renders rows as an aligned text table. */
function formatTable(rows: ReadonlyArray<Record<string, unknown>>): string {
  if (rows.length === 0) {
    return "  (no rows)";
  }
  const columns = Object.keys(rows[0] ?? {});
  const cells = rows.map((row) => columns.map((c) => cell(row[c])));
  const widths = columns.map((c, i) => Math.min(60, Math.max(c.length, ...cells.map((r) => (r[i] ?? "").length))));
  const line = (values: string[]) => "  " + values.map((v, i) => v.slice(0, 60).padEnd(widths[i] ?? 0)).join("  ");
  return [line(columns), line(widths.map((w) => "-".repeat(w))), ...cells.map(line)].join("\n");
}

/** How long the daemon gets to drain after SIGTERM (its own SHUTDOWN_GRACE is 30 s) before it is killed. */
const DAEMON_GRACE_MS = 35_000;

/** Waits for `promise` at most `ms`: true when it settled in time. */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([promise.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Shell-quotes a value for the commands the demo prints. */
function quote(value: string): string {
  return /^[\w./:@%+=-]+$/.test(value) ? value : `'${value.replace(/'/g, "'\\''")}'`;
}

/** Runs the demo until a signal (the entry point of `npm run demo`, via bin/demo.mjs). */
export async function runDemo(): Promise<void> {
  dotenv.config({ quiet: true });
  const dataDir = process.env.DATA_DIR ?? path.join(ROOT, "data");
  const demoDir = path.join(dataDir, "demo");
  // A closed terminal (SIGHUP) makes writes fail with EIO; shutting down must not fail on that.
  process.stdout.on("error", () => undefined);
  const say = (text: string) => {
    if (process.stdout.writable) {
      process.stdout.write(text + "\n");
    }
  };

  // SIGINT (Ctrl-C), SIGTERM and SIGHUP (the terminal closed) stop everything; a signal while PostgreSQL starts
  // takes effect once it has started (so it is stopped too). A second signal exits at once.
  const shutdown: { stop?: (reason: string) => Promise<void> } = {};
  let signals = 0;
  let firstSignalAt = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    // One Ctrl-C can arrive twice (from the terminal, and forwarded by `npm run`): a repeat within a second is the same.
    if (signals > 0 && Date.now() - firstSignalAt < 1000) {
      return;
    }
    signals++;
    firstSignalAt ||= Date.now();
    if (signals > 1) {
      say(`\n${signal} again: exiting without waiting (the next demo stops what is left)`);
      process.exit(130);
    }
    if (shutdown.stop) {
      void shutdown.stop(signal);
    } else {
      say(`\n${signal}: stopping as soon as PostgreSQL has started …`);
    }
  };
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(signal, onSignal);
  }

  say("signin-ingest demo: starting the Graph simulator and PostgreSQL …");
  const sim = await startSimulator({
    seed: 42,
    users: 120,
    signInsPerUserPerDay: 12,
    historyDays: 8,
    arrivalLatency: { p50Seconds: 60, p99Seconds: 900, maxSeconds: 7200 },
    republishRate: 0.02,
    quietWeekends: true,
  });
  let embedded: EmbeddedDatabase | undefined;
  if (!process.env.DATABASE_URL) {
    try {
      embedded = await startEmbeddedPostgres({
        dir: demoDir,
        port: Number(process.env.EMBEDDED_PG_PORT ?? DEMO_PG_PORT),
      });
    } catch (error) {
      process.stderr.write(
        `signin-ingest demo: ${error instanceof ConfigError ? error.problems.join("; ") : String(error)}\n`,
      );
      await sim.close();
      process.exit(error instanceof ConfigError ? EXIT.config : EXIT.internal);
    }
    if (embedded.origin === "adopted") {
      say(
        `(reusing the PostgreSQL a previous demo left running on port ${String(embedded.port)}; stopped with this one)`,
      );
    }
  }
  if (signals > 0) {
    await sim.close();
    await embedded?.stop();
    say("stopped.");
    process.exit(0);
  }
  const databaseUrl = process.env.DATABASE_URL ?? embedded?.url ?? "";

  const daemon = spawn(process.execPath, ["--import", LIFELINE, CLI, "run"], {
    cwd: ROOT,
    // Its own process group: Ctrl-C reaches only the demo, which then stops the daemon with one SIGTERM. Its stdin is
    // a pipe from us: the lifeline module stops it when the demo is gone, even after a SIGKILL.
    detached: true,
    stdio: ["pipe", "pipe", "inherit"],
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      AZURE_TENANT_ID: sim.tenantId,
      AZURE_CLIENT_ID: sim.clientId,
      AZURE_CLIENT_SECRET: sim.clientSecret,
      AZURE_AUTHORITY_HOST: sim.url,
      GRAPH_ENDPOINT: sim.url,
      POLL_SCHEDULE: process.env.DEMO_SCHEDULE ?? "*/30 * * * * *",
      INITIAL_LOOKBACK: "7d",
      MAX_WINDOW: "1d",
      // The simulator does not throttle unless asked; a real tenant keeps the 5 requests / 10 s default.
      GRAPH_BUDGET_PER_TENANT: "1000",
      LOG_LEVEL: "info",
    },
  });
  daemon.on("error", (error) => say(`the daemon could not be started: ${error.message}`));
  const daemonExited = new Promise<void>((resolve) => daemon.once("exit", () => resolve()));

  let printed = false;
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 1 });
  pool.on("error", () => undefined);
  let buffer = "";
  daemon.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    buffer += chunk;
    let newline: number;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        say(line);
        continue;
      }
      if (entry.msg === "cycle complete") {
        say(
          `[daemon] cycle: ${String(entry.pages)} pages, ${String(entry.fetched)} fetched, ${String(entry.inserted)} inserted, ` +
            `${String(entry.updated)} updated, ${String(entry.unchanged)} unchanged in ${String(entry.ms)} ms`,
        );
        if (!printed) {
          printed = true;
          void showQueries(pool, say, { databaseUrl, demoDir, ...(embedded ? { port: embedded.port } : {}) });
        }
      } else if (typeof entry.level === "string" && ["warn", "error", "fatal"].includes(entry.level)) {
        say(`[daemon] ${entry.level}: ${String(entry.msg)}${entry.err ? ` (${JSON.stringify(entry.err)})` : ""}`);
      }
    }
  });

  let stopping: Promise<void> | undefined;
  const stop = (reason: string) =>
    (stopping ??= (async () => {
      say(`\n${reason}: stopping the daemon, the simulator and PostgreSQL …`);
      if (daemon.exitCode === null && daemon.signalCode === null) {
        daemon.kill("SIGTERM");
        if (!(await within(daemonExited, DAEMON_GRACE_MS))) {
          say("the daemon did not stop in time: killing it");
          daemon.kill("SIGKILL");
          await within(daemonExited, 5000);
        }
      }
      await within(
        pool.end().catch(() => undefined),
        5000,
      );
      await sim.close();
      await embedded?.stop();
      say("stopped; the data stays in " + (embedded ? demoDir : "DATABASE_URL") + ".");
      process.exit(daemon.exitCode === 0 || reason !== "the daemon exited" ? 0 : EXIT.internal);
    })());
  shutdown.stop = stop;
  process.on("exit", () => {
    if (daemon.exitCode === null && daemon.signalCode === null) {
      daemon.kill("SIGKILL");
    }
  });
  daemon.on("exit", (code, signal) => {
    if (!stopping) {
      say(`the daemon exited unexpectedly (${signal ?? `code ${String(code)}`})`);
      void stop("the daemon exited");
    }
  });
}

async function showQueries(
  pool: pg.Pool,
  say: (text: string) => void,
  where: { databaseUrl: string; demoDir: string; port?: number },
): Promise<void> {
  try {
    for (const query of DEMO_QUERIES) {
      const result = await pool.query(query.sql);
      say(`\n${query.title}\n${formatTable(result.rows as Array<Record<string, unknown>>)}`);
    }
  } catch (error) {
    say(`example queries failed: ${(error as Error).message}`);
  }
  // The commands reach this demo's database: while it runs (they share its server) and after (they start it).
  const relative = path.relative(process.cwd(), where.demoDir);
  const dir = relative && !relative.startsWith("..") && !path.isAbsolute(relative) ? relative : where.demoDir;
  const hostAddress = process.env.DEMO_HOST_ADDRESS;
  let url = where.databaseUrl;
  if (hostAddress) {
    // In a container (docker compose --profile demo): the address the host reaches, with the password in use.
    const parsed = new URL(where.databaseUrl);
    parsed.host = hostAddress;
    if (!parsed.password && process.env.PGPASSWORD) {
      parsed.password = encodeURIComponent(process.env.PGPASSWORD);
    }
    url = parsed.toString();
  }
  const status =
    where.port !== undefined
      ? `DATA_DIR=${quote(dir)} EMBEDDED_PG_PORT=${String(where.port)} node src/cli.ts status`
      : hostAddress
        ? `docker compose --profile demo run --rm demo node src/cli.ts status   (or, from a clone: DATABASE_URL=${quote(url)} node src/cli.ts status)`
        : `DATABASE_URL=${quote(url)} node src/cli.ts status`;
  say(`
Connect with:   psql "${url}"
Try:            select * from sign_ins order by created_date_time desc limit 5;
Status:         ${status}
The daemon keeps polling the simulator (DEMO_SCHEDULE, default every 30 seconds; new sign-ins keep arriving).
Stop with Ctrl-C; the data survives a restart of the demo.`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  void runDemo();
}
