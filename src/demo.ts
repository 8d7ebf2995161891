// `npm run demo`: the whole thing working without an Entra tenant or Docker. Starts the Graph simulator (a synthetic
// tenant) and a PostgreSQL (embedded under DATA_DIR, or DATABASE_URL), runs the real daemon (`src/cli.ts run`) against
// them on a short schedule, then prints the connection string and a few example queries with their results.

import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

import dotenv from "dotenv";
import pg from "pg";

import { startSimulator } from "./simulator/server.ts";
import { startEmbeddedPostgres } from "./store/embedded.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CLI = path.join(ROOT, "src", "cli.ts");

export const DEMO_QUERIES: ReadonlyArray<{ title: string; sql: string }> = [
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
export function formatTable(rows: ReadonlyArray<Record<string, unknown>>): string {
  if (rows.length === 0) {
    return "  (no rows)";
  }
  const columns = Object.keys(rows[0] ?? {});
  const cells = rows.map((row) => columns.map((c) => cell(row[c])));
  const widths = columns.map((c, i) => Math.min(60, Math.max(c.length, ...cells.map((r) => (r[i] ?? "").length))));
  const line = (values: string[]) => "  " + values.map((v, i) => v.slice(0, 60).padEnd(widths[i] ?? 0)).join("  ");
  return [line(columns), line(widths.map((w) => "-".repeat(w))), ...cells.map(line)].join("\n");
}

async function main(): Promise<void> {
  dotenv.config({ quiet: true });
  const dataDir = process.env.DATA_DIR ?? path.join(ROOT, "data");
  const say = (text: string) => process.stdout.write(text + "\n");

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
  const embedded = process.env.DATABASE_URL
    ? undefined
    : await startEmbeddedPostgres({
        dir: path.join(dataDir, "demo"),
        port: Number(process.env.EMBEDDED_PG_PORT ?? 54330),
      });
  const databaseUrl = process.env.DATABASE_URL ?? embedded?.url ?? "";

  const daemon = spawn(process.execPath, [CLI, "run"], {
    cwd: ROOT,
    // Its own process group: Ctrl-C reaches only the demo, which then stops the daemon with one SIGTERM.
    detached: true,
    stdio: ["ignore", "pipe", "inherit"],
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
          void showQueries(pool, databaseUrl, say);
        }
      } else if (typeof entry.level === "string" && ["warn", "error", "fatal"].includes(entry.level)) {
        say(`[daemon] ${entry.level}: ${String(entry.msg)}${entry.err ? ` (${JSON.stringify(entry.err)})` : ""}`);
      }
    }
  });

  let stopping = false;
  const stop = async () => {
    if (stopping) {
      return;
    }
    stopping = true;
    say("\nstopping the daemon, the simulator and PostgreSQL …");
    daemon.kill("SIGTERM");
    await new Promise((resolve) => daemon.once("exit", resolve));
    await pool.end().catch(() => undefined);
    await sim.close();
    await embedded?.stop();
    say("stopped; the data stays in " + (embedded ? path.join(dataDir, "demo") : "DATABASE_URL") + ".");
    process.exit(0);
  };
  process.on("SIGINT", () => void stop());
  process.on("SIGTERM", () => void stop());
  process.on("exit", () => {
    if (daemon.exitCode === null) {
      daemon.kill("SIGKILL");
    }
  });
  daemon.on("exit", (code) => {
    if (!stopping) {
      say(`the daemon exited unexpectedly with code ${String(code)}`);
      void stop();
    }
  });
}

async function showQueries(pool: pg.Pool, databaseUrl: string, say: (text: string) => void): Promise<void> {
  try {
    for (const query of DEMO_QUERIES) {
      const result = await pool.query(query.sql);
      say(`\n${query.title}\n${formatTable(result.rows as Array<Record<string, unknown>>)}`);
    }
  } catch (error) {
    say(`example queries failed: ${(error as Error).message}`);
  }
  say(`
Connect with:   psql "${databaseUrl}"
Try:            select * from sign_ins order by created_date_time desc limit 5;
The daemon keeps polling the simulator every 30 seconds (new sign-ins keep arriving).
Stop with Ctrl-C; the data survives a restart of the demo.`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  void main();
}
