// The container definition stays consistent with what the tests run.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, readFileSync, rmSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { CLI } from "./helpers/daemon.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const dockerfile = readFileSync(new URL("../Dockerfile", import.meta.url), "utf8");

test("the image starts the same command the tests run", () => {
  const cmd = /^CMD (\[.*\])$/m.exec(dockerfile)?.[1];
  assert.ok(cmd, "Dockerfile has an exec-form CMD");
  const [node, script, command] = JSON.parse(cmd) as string[];
  assert.equal(node, "node");
  assert.equal(`${ROOT}${script}`, CLI, "CMD runs src/cli.ts, the file the tests spawn");
  assert.equal(command, "run");
  assert.match(dockerfile, /^FROM node:24-slim/m);
  assert.match(dockerfile, /npm ci --omit=dev/);
  assert.match(dockerfile, /^USER node$/m);
  assert.match(dockerfile, /^HEALTHCHECK .*\/healthz/ms);
  const compose = readFileSync(new URL("../docker-compose.yml", import.meta.url), "utf8");
  assert.ok(compose.includes(`command: ${cmd}`), "compose runs the same command");
});

test("the benchmark measures the daemon with the image's Node settings", () => {
  const bench = readFileSync(new URL("../bench/ingest.ts", import.meta.url), "utf8");
  const flags = /^const PRODUCTION_NODE_FLAGS = "(.*)";$/m.exec(bench)?.[1];
  const options = /^\s*NODE_OPTIONS=("[^"]*"|\S+)/m.exec(dockerfile)?.[1]?.replace(/^"|"$/g, "");
  assert.equal(options, flags, "Dockerfile NODE_OPTIONS = PRODUCTION_NODE_FLAGS in bench/ingest.ts");
  // The compile cache is filled as the user that runs the daemon (Node keys it by uid).
  const cache = /^\s*NODE_COMPILE_CACHE=(\S+)/m.exec(dockerfile)?.[1];
  assert.ok(cache, "the image sets NODE_COMPILE_CACHE");
  const fill = dockerfile.search(/^RUN node src\/cli\.ts /m);
  assert.ok(fill > dockerfile.search(/^USER node$/m), "the image fills the cache after USER node");
});

test("docker-compose.yml is valid (docker-compose config)", (t) => {
  let binary: string | undefined;
  for (const candidate of ["docker-compose"]) {
    try {
      execFileSync(candidate, ["version"], { stdio: "ignore" });
      binary = candidate;
    } catch {
      // not installed
    }
  }
  if (!binary) {
    t.skip("docker-compose is not installed (apt-get install docker-compose)");
    return;
  }
  const env = `${ROOT}.env`;
  const created = !existsSync(env);
  if (created) {
    copyFileSync(`${ROOT}.env.example`, env);
  }
  try {
    for (const args of [
      ["config", "-q"],
      ["--profile", "demo", "config", "-q"],
    ]) {
      execFileSync(binary, args, { cwd: ROOT, stdio: "pipe" });
    }
  } finally {
    if (created) {
      rmSync(env);
    }
  }
});
