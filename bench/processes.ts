// Runs `node src/cli.ts …` as a user starts it (no extra Node flags, no NODE_OPTIONS, no NODE_COMPILE_CACHE from the
// bench's own environment) and reports its wall time, exit code and peak RSS. The peak is the kernel's: getrusage of
// the child through /usr/bin/time (ru_maxrss), or, where /usr/bin/time is missing, VmHWM sampled from
// /proc/<pid>/status every 50 ms.

import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const CLI = fileURLToPath(new URL("../src/cli.ts", import.meta.url));
const TIME = "/usr/bin/time";

export interface CliRun {
  code: number | null;
  ms: number;
  /** Peak resident set size in MiB. */
  peakRssMb: number;
  stderr: string;
}

/** The bench's environment without what would change how Node runs (a user's shell has none of these set). */
export function plainEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(NODE_OPTIONS|NODE_COMPILE_CACHE|NODE_DISABLE_COMPILE_CACHE|DATABASE_URL|AZURE_.*|GRAPH_.*|PG.*)$/.test(k)) {
      env[k] = v;
    }
  }
  return { ...env, ...extra };
}

/**
 * What a benchmarked daemon needs to catch up against the simulator: its credentials and endpoints, Graph's budget
 * lifted (the limit under test is the database), no sweeps, quiet logs. `extra` adds the tenant(s) and the rest.
 */
export function catchUpEnv(
  sim: { url: string; clientId: string; clientSecret: string },
  databaseUrl: string,
  lookbackMs: number,
  extra: Record<string, string>,
): Record<string, string> {
  return {
    DATABASE_URL: databaseUrl,
    AZURE_CLIENT_ID: sim.clientId,
    AZURE_CLIENT_SECRET: sim.clientSecret,
    AZURE_AUTHORITY_HOST: sim.url,
    GRAPH_ENDPOINT: sim.url,
    GRAPH_BUDGET_PER_TENANT: "100000",
    GRAPH_BUDGET_PER_APP: "100000",
    INITIAL_LOOKBACK: `${Math.ceil(lookbackMs / 1000)}s`,
    SWEEPS: "off",
    METRICS_PORT: "0",
    LOG_LEVEL: "warn",
    ...extra,
  };
}

/**
 * `node src/cli.ts <args>` in `cwd` (an empty directory: no .env is read), with `env` added to a plain environment.
 * `until` (for `run`, which never exits by itself): polled every 500 ms; once true, node gets SIGTERM.
 */
export async function runCli(
  args: string[],
  env: Record<string, string>,
  cwd: string,
  until?: () => Promise<boolean>,
): Promise<CliRun> {
  const dir = await mkdtemp(path.join(tmpdir(), "bench-rss-"));
  const timeFile = path.join(dir, "time");
  const viaTime = existsSync(TIME);
  const command = viaTime ? TIME : process.execPath;
  const argv = viaTime ? ["-o", timeFile, "-f", "%M", process.execPath, CLI, ...args] : [CLI, ...args];
  const started = performance.now();
  const proc = spawn(command, argv, { cwd, env: plainEnv(env), stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  proc.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    stderr = (stderr + chunk).slice(-20_000);
  });
  let hwmKb = 0;
  const sampler = viaTime
    ? undefined
    : setInterval(() => {
        try {
          const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${proc.pid}/status`, "utf8"));
          hwmKb = Math.max(hwmKb, Number(m?.[1] ?? 0));
        } catch {
          // exited meanwhile
        }
      }, 50);
  let exited = false;
  const exit = new Promise<number | null>((resolve, reject) => {
    proc.on("error", reject);
    proc.on("exit", (c) => {
      exited = true;
      resolve(c);
    });
  });
  while (until && !exited) {
    await Promise.race([exit, new Promise((r) => setTimeout(r, 500))]);
    if (!exited && (await until())) {
      // The node process itself (under /usr/bin/time: its child), as a service manager would stop it.
      const children = viaTime ? readFileSync(`/proc/${proc.pid}/task/${proc.pid}/children`, "utf8").trim() : "";
      process.kill(Number(children.split(/\s+/)[0] || proc.pid), "SIGTERM");
      break;
    }
  }
  const code = await exit;
  const ms = performance.now() - started;
  clearInterval(sampler);
  if (viaTime) {
    const text = await readFile(timeFile, "utf8").catch(() => "");
    hwmKb = Number(/(\d+)\s*$/.exec(text.trim())?.[1] ?? 0);
  }
  await rm(dir, { recursive: true, force: true });
  return { code, ms, peakRssMb: hwmKb / 1024, stderr };
}

/** Several `node src/cli.ts` processes at once (replicas); each one's result, in order. */
export function runClis(runs: Array<{ args: string[]; env: Record<string, string> }>, cwd: string): Promise<CliRun[]> {
  return Promise.all(runs.map((r) => runCli(r.args, r.env, cwd)));
}
