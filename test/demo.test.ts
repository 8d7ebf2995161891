// `npm run demo` as a newcomer runs it: the real demo (simulator, embedded PostgreSQL in a temporary DATA_DIR, the
// real daemon) in a child process, stopped by a closed terminal (SIGHUP), by Ctrl-C (SIGINT), after a crash
// (SIGKILL: the daemon must not outlive it, the next demo adopts and stops the leftover server), and when its daemon
// dies on its own (it must not hang). Every wait is bounded; nothing is timed.

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { isAlive } from "../src/store/embedded.ts";
import { freePort } from "./helpers/global-setup.ts";
import { clockEnv, runCli } from "./helpers/daemon.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const DEMO = path.join(ROOT, "src", "demo.ts");
const WAIT_MS = 150_000;

interface Demo {
  child: ChildProcess;
  output: () => string;
  waitFor(text: string): Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startDemo(env: Record<string, string>): Demo {
  const child = spawn(process.execPath, [DEMO], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...clockEnv(), METRICS_PORT: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const waiters: Array<{ text: string; resolve: () => void }> = [];
  const onData = (chunk: string) => {
    output += chunk;
    for (const w of [...waiters]) {
      if (output.includes(w.text)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  };
  child.stdout.setEncoding("utf8").on("data", onData);
  child.stderr.setEncoding("utf8").on("data", onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => setImmediate(() => resolve({ code, signal }))),
  );
  return {
    child,
    output: () => output,
    exited,
    waitFor: (text) =>
      new Promise<void>((resolve, reject) => {
        if (output.includes(text)) {
          resolve();
          return;
        }
        const timer = setTimeout(() => reject(new Error(`demo never printed "${text}":\n${output}`)), WAIT_MS);
        void exited.then(() =>
          setImmediate(() => {
            if (!output.includes(text)) {
              clearTimeout(timer);
              reject(new Error(`demo exited before printing "${text}":\n${output}`));
            }
          }),
        );
        waiters.push({
          text,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      }),
  };
}

async function bounded<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: still waiting`)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function gone(pid: number, what: string): Promise<void> {
  for (let i = 0; i < 600 && isAlive(pid); i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.ok(!isAlive(pid), `${what} (pid ${String(pid)}) is still running`);
}

/** The demo's daemon: its one child process (Linux /proc). */
function childPids(pid: number): number[] {
  const file = `/proc/${String(pid)}/task/${String(pid)}/children`;
  return existsSync(file) ? readFileSync(file, "utf8").trim().split(/\s+/).filter(Boolean).map(Number) : [];
}

function postmasterPid(dataDir: string): number {
  return Number(readFileSync(path.join(dataDir, "demo", "pg", "postmaster.pid"), "utf8").split("\n")[0]);
}

async function withDemoDir(work: (dir: string, port: number) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), "signin-demo-test-"));
  await chmod(dir, 0o755); // run as root, PostgreSQL runs as `postgres`, which must reach DATA_DIR
  try {
    await work(dir, await freePort());
  } finally {
    // A failed test must not leave a server behind.
    const pidFile = path.join(dir, "demo", "pg", "postmaster.pid");
    if (existsSync(pidFile)) {
      try {
        process.kill(postmasterPid(dir), "SIGQUIT");
      } catch {
        // already gone
      }
    }
    await rm(dir, { recursive: true, force: true });
  }
}

test(
  "a closed terminal (SIGHUP) stops the demo's daemon and PostgreSQL; the printed status command reaches its data",
  { timeout: 300_000 },
  () =>
    withDemoDir(async (dir, port) => {
      const demo = startDemo({ DATA_DIR: dir, EMBEDDED_PG_PORT: String(port) });
      await demo.waitFor("Stop with Ctrl-C");
      const server = postmasterPid(dir);
      const daemons = childPids(demo.child.pid ?? 0);

      // The command the demo printed, run while the demo runs: it shares the demo's server and sees its tenant.
      const line = /^Status: +(.*) node src\/cli\.ts status$/m.exec(demo.output())?.[1];
      assert.ok(line, `the demo prints a status command:\n${demo.output()}`);
      const env = Object.fromEntries(line.split(" ").map((kv) => kv.split("=") as [string, string]));
      assert.equal(env.EMBEDDED_PG_PORT, String(port));
      assert.equal(path.resolve(ROOT, env.DATA_DIR ?? ""), path.join(dir, "demo"));
      const status = await runCli(["status"], { PATH: process.env.PATH ?? "", ...clockEnv(), ...env });
      assert.equal(status.code, 0, status.stderr);
      assert.match(status.stdout, /interactiveUser +\S+/);
      assert.doesNotMatch(status.stdout, /No tenant has been polled yet/);
      assert.ok(isAlive(server), "status left the demo's server running");

      demo.child.kill("SIGHUP");
      const { code } = await bounded(demo.exited, "demo exit after SIGHUP");
      assert.equal(code, 0, demo.output());
      assert.match(demo.output(), /SIGHUP: stopping the daemon, the simulator and PostgreSQL/);
      await gone(server, "the demo's PostgreSQL");
      for (const daemon of daemons) {
        await gone(daemon, "the demo's daemon");
      }
      assert.ok(!existsSync(path.join(dir, "demo", "pg", "postmaster.pid")));
    }),
);

test(
  "after a crash (SIGKILL) the daemon does not outlive the demo; the next demo adopts the leftover server and Ctrl-C stops it",
  { timeout: 400_000 },
  () =>
    withDemoDir(async (dir, port) => {
      const first = startDemo({ DATA_DIR: dir, EMBEDDED_PG_PORT: String(port) });
      await first.waitFor("Stop with Ctrl-C");
      const server = postmasterPid(dir);
      const daemons = childPids(first.child.pid ?? 0);
      first.child.kill("SIGKILL");
      await bounded(first.exited, "SIGKILL");
      for (const daemon of daemons) {
        await gone(daemon, "the crashed demo's daemon");
      }
      assert.ok(isAlive(server), "the leftover PostgreSQL keeps running after a SIGKILL (nothing could stop it)");

      const second = startDemo({ DATA_DIR: dir, EMBEDDED_PG_PORT: String(port) });
      await second.waitFor("Stop with Ctrl-C");
      assert.match(second.output(), /reusing the PostgreSQL a previous demo left running/);
      assert.equal(postmasterPid(dir), server, "the same server, not a second one");
      assert.doesNotMatch(second.output(), /exited unexpectedly/);
      second.child.kill("SIGINT");
      const { code } = await bounded(second.exited, "demo exit after SIGINT");
      assert.equal(code, 0, second.output());
      await gone(server, "the adopted PostgreSQL");
    }),
);

test(
  "the demo does not hang when its daemon exits on its own (METRICS_PORT taken); Ctrl-C during start-up stops PostgreSQL",
  { timeout: 300_000 },
  () =>
    withDemoDir(async (dir, port) => {
      const squatter: Server = createServer();
      await new Promise<void>((resolve) => squatter.listen(0, "127.0.0.1", resolve));
      const taken = (squatter.address() as { port: number }).port;
      try {
        const demo = startDemo({ DATA_DIR: dir, EMBEDDED_PG_PORT: String(port), METRICS_PORT: String(taken) });
        const { code } = await bounded(demo.exited, "demo exit after its daemon died");
        assert.match(demo.output(), /the daemon exited unexpectedly \(code \d+\)/);
        assert.notEqual(code, 0);
        assert.ok(!existsSync(path.join(dir, "demo", "pg", "postmaster.pid")), "PostgreSQL was stopped");
      } finally {
        squatter.close();
      }

      // A Ctrl-C while PostgreSQL starts: the demo waits for it, then stops it (no leftover server).
      const early = startDemo({ DATA_DIR: dir, EMBEDDED_PG_PORT: String(port) });
      await early.waitFor("starting the Graph simulator and PostgreSQL");
      early.child.kill("SIGINT");
      const { code } = await bounded(early.exited, "demo exit after an early SIGINT");
      assert.equal(code, 0, early.output());
      assert.ok(!existsSync(path.join(dir, "demo", "pg", "postmaster.pid")), "PostgreSQL was stopped");
    }),
);
