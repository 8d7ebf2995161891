// SIGHUP (a closed terminal, a dropped SSH session) stops every command the way SIGTERM does (issue 15): the open
// transaction rolled back, the leases released, the embedded PostgreSQL stopped when the command started it. Real
// child processes of `node src/cli.ts`, the Graph simulator, a real PostgreSQL, and for the closed terminal a real
// pseudo-terminal (util-linux `script`), whose writes fail with EIO once it is gone. Every wait is bounded; nothing
// is timed.

import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";

import pg from "pg";

import { type Simulator, startSimulator } from "../src/simulator/server.ts";
import { readCheckpoint } from "../src/store/checkpoints.ts";
import { isAlive, runningServer, startEmbeddedPostgres } from "../src/store/embedded.ts";
import { CLI, clockEnv, daemonEnv, startCli } from "./helpers/daemon.ts";
import { simulatorSuite } from "./helpers/db.ts";
import { freePort } from "./helpers/global-setup.ts";

let sim: Simulator;
const { fresh } = simulatorSuite(
  () => startSimulator({ seed: 16, users: 10, signInsPerUserPerDay: 24, historyDays: 2 }),
  (s) => (sim = s),
);

const WAIT_MS = 120_000;

const LEFT_BEHIND = `select (select count(*) from replicas)::int as replicas, (select count(*) from stream_leases)::int as leases`;

async function leftBehind(pool: pg.Pool): Promise<{ replicas: number; leases: number }> {
  return (await pool.query<{ replicas: number; leases: number }>(LEFT_BEHIND)).rows[0] ?? { replicas: -1, leases: -1 };
}

test("`once`: SIGHUP during a Retry-After wait stops it as SIGTERM does: exit 0, nothing committed, lease released", async () => {
  const db = await fresh();
  sim.resetRequests();
  sim.setFaults([{ match: { requestNumber: 1 }, kind: "status", status: 429, retryAfter: "30" }]);
  const running = startCli(["once"], daemonEnv(sim, db.url));
  await running.waitForLog((l) => l.msg === "request will be retried");
  running.child.kill("SIGHUP");
  const result = await running.finished;
  assert.equal(result.code, 0, result.stdout + result.stderr);
  assert.ok(
    result.logs.some((l) => l.msg === "shutting down" && l.signal === "SIGHUP"),
    "said why it stopped",
  );
  assert.equal(await readCheckpoint(db.pool, sim.tenantId, "interactiveUser"), undefined, "nothing committed");
  assert.deepEqual(await leftBehind(db.pool), { replicas: 0, leases: 0 });
});

function hasScript(): boolean {
  try {
    execFileSync("script", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false; // util-linux's `script` is not installed
  }
}

function shellQuote(value: string): string {
  return `'${value.replace(/'/g, "'\\''")}'`;
}

test(
  "`run` on a terminal that closes (SIGHUP, then EIO on every write): stops as on SIGTERM, leases released, its embedded PostgreSQL stopped",
  { skip: !hasScript() && "util-linux `script` (a pseudo-terminal) is not installed" },
  async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "signin-hup-"));
    await chmod(dir, 0o755); // run as root, PostgreSQL runs as `postgres`, which must reach DATA_DIR
    const port = await freePort();
    const { DATABASE_URL: _, ...env } = daemonEnv(sim, "unused", {
      DATA_DIR: dir,
      EMBEDDED_PG_PORT: String(port),
      POLL_SCHEDULE: "0 0 1 1 *",
      LOG_LEVEL: "info",
      PROGRESS: "off",
    });
    sim.resetRequests();
    // `script` runs the command on a new pseudo-terminal, in its own session; killing `script` closes the terminal.
    const terminal = spawn("script", ["-qfec", [process.execPath, CLI, "run"].map(shellQuote).join(" "), "/dev/null"], {
      env: { ...clockEnv(), ...env, SHELL: "/bin/sh" },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let output = "";
    terminal.stdout.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
    terminal.stderr.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
    const ownerFile = path.join(dir, "postmaster.owner");
    let daemonPid = 0;
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no cycle within ${String(WAIT_MS)} ms:\n${output}`)), WAIT_MS);
        const check = setInterval(() => {
          if (output.includes('"scheduled"') && output.includes('"cycle complete"')) {
            clearInterval(check);
            clearTimeout(timer);
            resolve();
          }
        }, 50);
      });
      daemonPid = Number(readFileSync(ownerFile, "utf8").trim());
      assert.ok(isAlive(daemonPid), "the daemon runs the embedded server");
      terminal.kill("SIGKILL");
      for (let i = 0; i < WAIT_MS / 100 && isAlive(daemonPid); i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.ok(!isAlive(daemonPid), `the daemon (pid ${String(daemonPid)}) outlived its terminal`);
      assert.equal(await runningServer(path.join(dir, "pg")), undefined, "its embedded PostgreSQL was stopped");
      assert.ok(!existsSync(ownerFile), "by the daemon's own shutdown (it removes its owner file)");

      // The data: the cycle committed, and no replica row or lease was left for others to wait out.
      const embedded = await startEmbeddedPostgres({ dir, port });
      const pool = new pg.Pool({ connectionString: embedded.url, max: 1 });
      try {
        assert.equal(embedded.origin, "started");
        assert.notEqual(await readCheckpoint(pool, sim.tenantId, "interactiveUser"), undefined);
        assert.deepEqual(await leftBehind(pool), { replicas: 0, leases: 0 });
      } finally {
        await pool.end();
        await embedded.stop();
      }
    } finally {
      terminal.kill("SIGKILL");
      if (daemonPid > 0 && isAlive(daemonPid)) {
        process.kill(daemonPid, "SIGKILL");
      }
      const server = await runningServer(path.join(dir, "pg"));
      if (server) {
        process.kill(server.pid, "SIGQUIT");
      }
      await rm(dir, { recursive: true, force: true });
    }
  },
);
