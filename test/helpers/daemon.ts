// Runs the real CLI (`node src/cli.ts …`) as a child process, as users and the container do.

import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

import type { Simulator } from "../../src/simulator/server.ts";

export const CLI = fileURLToPath(new URL("../../src/cli.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout parsed as pino JSON lines (non-JSON lines skipped). */
  logs: Array<Record<string, unknown>>;
}

export interface Running {
  child: ChildProcess;
  /** Resolves when the process exits. */
  finished: Promise<Finished>;
  /** Resolves with the first log line that satisfies `predicate`. */
  waitForLog(
    predicate: (line: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
}

/** Environment that points the daemon at a simulator and a database, with fast retries for tests. */
export function daemonEnv(
  sim: Simulator,
  databaseUrl: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    PATH: process.env.PATH ?? "",
    HOME: process.env.HOME ?? "/tmp",
    DATABASE_URL: databaseUrl,
    AZURE_TENANT_ID: sim.tenantId,
    AZURE_CLIENT_ID: sim.clientId,
    AZURE_CLIENT_SECRET: sim.clientSecret,
    AZURE_AUTHORITY_HOST: sim.url,
    GRAPH_ENDPOINT: sim.url,
    INITIAL_LOOKBACK: "1d",
    RETRY_BASE_DELAY: "20ms",
    MAX_RETRIES: "3",
    HTTP_TIMEOUT: "5s",
    LOG_LEVEL: "debug",
    METRICS_PORT: "0",
    GRAPH_BUDGET_PER_TENANT: "10000",
    ...extra,
  };
}

function parseLines(text: string): Array<Record<string, unknown>> {
  const lines: Array<Record<string, unknown>> = [];
  for (const line of text.split("\n")) {
    if (line.startsWith("{")) {
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // a partial line from a killed process
      }
    }
  }
  return lines;
}

/**
 * What a shifted clock needs in a child: a run under `faketime` (LD_PRELOAD and FAKETIME*) keeps its clock in the
 * CLI children, whose environments are otherwise built from scratch.
 */
export function clockEnv(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(process.env).filter(
      (e): e is [string, string] => (e[0] === "LD_PRELOAD" || e[0].startsWith("FAKETIME")) && e[1] !== undefined,
    ),
  );
}

/** Another user to run the CLI as (test/helpers/accounts.ts): its uid and gid, and a Node binary it can run. */
export interface RunAs {
  uid: number;
  gid: number;
  node: string;
}

export function startCli(args: string[], env: Record<string, string>, as?: RunAs): Running {
  const child = spawn(as?.node ?? process.execPath, [CLI, ...args], {
    cwd: ROOT,
    env: { ...clockEnv(), ...env },
    stdio: ["ignore", "pipe", "pipe"],
    ...(as ? { uid: as.uid, gid: as.gid } : {}),
  });
  let stdout = "";
  let stderr = "";
  /** The last, unfinished line of stdout: a chunk may end in the middle of a line. */
  let partial = "";
  const waiters: Array<{
    predicate: (l: Record<string, unknown>) => boolean;
    resolve: (l: Record<string, unknown>) => void;
  }> = [];
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
    const text = partial + chunk;
    const end = text.lastIndexOf("\n") + 1;
    partial = text.slice(end);
    for (const line of parseLines(text.slice(0, end))) {
      for (const w of [...waiters]) {
        if (w.predicate(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  });
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  // 'close' comes after 'exit' and after both pipes have been read to their end.
  const finished = new Promise<Finished>((resolve) => {
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr, logs: parseLines(stdout) }));
  });
  return {
    child,
    finished,
    waitForLog: (predicate, timeoutMs = 20_000) =>
      new Promise((resolve, reject) => {
        const existing = parseLines(stdout).find(predicate);
        if (existing) {
          resolve(existing);
          return;
        }
        const timer = setTimeout(
          () => reject(new Error(`no matching log line within ${timeoutMs} ms:\n${stdout}\n${stderr}`)),
          timeoutMs,
        );
        waiters.push({
          predicate,
          resolve: (line) => {
            clearTimeout(timer);
            resolve(line);
          },
        });
      }),
  };
}

/** Runs the CLI to completion. */
export function runCli(args: string[], env: Record<string, string>, as?: RunAs): Promise<Finished> {
  return startCli(args, env, as).finished;
}
