// The container definition stays consistent with what the tests run.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import YAML from "yaml";

import { MMAP_THRESHOLD } from "../src/start-settings.ts";
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
  // src/runtime.ts re-executes a plain process with the same (the bench's child runs with it too).
  assert.equal(/^\s*GLIBC_TUNABLES=(\S+)/m.exec(dockerfile)?.[1], MMAP_THRESHOLD, "Dockerfile GLIBC_TUNABLES");
  // The compile cache is filled as the user that runs the daemon (Node keys it by uid).
  const cache = /^\s*NODE_COMPILE_CACHE=(\S+)/m.exec(dockerfile)?.[1];
  assert.ok(cache, "the image sets NODE_COMPILE_CACHE");
  const fill = dockerfile.search(/^RUN node src\/cli\.ts /m);
  assert.ok(fill > dockerfile.search(/^USER node$/m), "the image fills the cache after USER node");
});

function composeBinary(): string | undefined {
  try {
    execFileSync("docker-compose", ["version"], { stdio: "ignore" });
    return "docker-compose";
  } catch {
    return undefined; // not installed
  }
}

interface ComposeService {
  profiles?: string[];
  environment?: Record<string, string | null>;
  env_file?: string[];
  command?: string[];
  entrypoint?: string[];
  read_only?: boolean;
  security_opt?: string[];
  cap_drop?: string[];
  mem_limit?: string | number;
  user?: string;
  ports?: Array<string | { host_ip?: string; published?: string | number }>;
}

/** `docker-compose config` as the engine would see it: no `.env` (an empty env file), or the given one. */
function composeConfig(
  binary: string,
  envFile: string,
  env: Record<string, string> = {},
): Record<string, ComposeService> {
  const text = execFileSync(binary, ["--env-file", envFile, "config"], {
    cwd: ROOT,
    encoding: "utf8",
    env: { PATH: process.env.PATH ?? "", ...env },
  });
  return (YAML.parse(text) as { services: Record<string, ComposeService> }).services;
}

test("docker-compose config: works without .env; profiles; hardening; the demo sees no tenant credentials", (t) => {
  const binary = composeBinary();
  if (!binary) {
    t.skip("docker-compose is not installed (apt-get install docker-compose)");
    return;
  }
  const dir = mkdtempSync(path.join(tmpdir(), "signin-compose-"));
  try {
    const empty = path.join(dir, "empty.env");
    writeFileSync(empty, "");
    // No .env at all (a first-time user), including the demo profile.
    for (const args of [
      ["config", "-q"],
      ["--profile", "demo", "config", "-q"],
    ]) {
      execFileSync(binary, ["--env-file", empty, ...args], {
        cwd: ROOT,
        stdio: "pipe",
        env: { PATH: process.env.PATH ?? "" },
      });
    }
    const services = composeConfig(binary, empty);
    assert.deepEqual(Object.keys(services).sort(), ["demo", "grafana", "postgres", "secrets", "signin-ingest"]);

    // The real daemon runs only in the `tenant` profile (which .env.example turns on), the demo only in `demo`.
    assert.deepEqual(services["signin-ingest"]?.profiles, ["tenant"]);
    assert.deepEqual(services.demo?.profiles, ["demo"]);
    for (const always of ["postgres", "grafana", "secrets"]) {
      assert.equal(services[always]?.profiles, undefined, `${always} runs in every profile`);
    }
    assert.match(readFileSync(path.join(ROOT, ".env.example"), "utf8"), /^COMPOSE_PROFILES=tenant$/m);
    const demo = services.demo ?? {};
    assert.equal(demo.env_file, undefined, "the demo reads no .env");
    assert.ok(!Object.keys(demo.environment ?? {}).some((k) => k.startsWith("AZURE_")), "no tenant credentials");
    assert.deepEqual(demo.command, ["node", "src/demo.ts"]);
    assert.match(String(demo.environment?.DEMO_HOST_ADDRESS), /^127\.0\.0\.1:5432$/, "the demo prints a host address");

    // The daemon: the image's user (USER node), the same command the tests run, a non-superuser login.
    const daemon = services["signin-ingest"] ?? {};
    assert.equal(daemon.user, undefined, "runs as the image's USER node");
    assert.deepEqual(daemon.command, ["node", "src/cli.ts", "run"]);
    assert.equal(daemon.entrypoint?.at(-1), "/opt/signin-ingest/file-env.sh");
    assert.match(String(daemon.environment?.DATABASE_URL), /^postgres:\/\/signin_ingest@postgres:5432\/signin$/);
    assert.ok(daemon.environment?.PGPASSWORD_FILE, "the password comes from a file");

    for (const [name, service] of Object.entries(services)) {
      assert.ok(service.security_opt?.includes("no-new-privileges:true"), `${name}: no-new-privileges`);
      assert.deepEqual(service.cap_drop, ["ALL"], `${name}: capabilities dropped`);
      assert.ok(service.mem_limit, `${name}: memory limit`);
      for (const port of service.ports ?? []) {
        const hostIp = typeof port === "string" ? port.split(":")[0] : port.host_ip;
        assert.equal(hostIp, "127.0.0.1", `${name}: published on loopback only`);
      }
      if (name !== "grafana") {
        assert.equal(service.read_only, true, `${name}: read-only root filesystem`);
      }
      for (const [key, value] of Object.entries(service.environment ?? {}).filter(([k]) => /PASSWORD/.test(k))) {
        assert.ok(!/^(admin|grafana|signin)$/.test(String(value)), `${name}: ${key} is not a fixed default password`);
      }
    }
    const grafana = services.grafana?.environment ?? {};
    assert.equal(grafana.GF_SECURITY_ADMIN_PASSWORD, undefined, "no admin/admin");
    assert.ok(grafana.GF_SECURITY_ADMIN_PASSWORD__FILE);
    assert.ok(services.postgres?.environment?.POSTGRES_PASSWORD_FILE);

    // With a filled-in .env: the daemon reads it; passwords set there reach the one service that writes them all.
    const filled = path.join(dir, "filled.env");
    writeFileSync(filled, readFileSync(path.join(ROOT, ".env.example"), "utf8") + "GRAFANA_DB_PASSWORD=chosen-db\n");
    const withEnv = composeConfig(binary, filled, { SIGNIN_INGEST_ENV_FILE: filled });
    assert.equal(withEnv["signin-ingest"]?.environment?.AZURE_TENANT_ID, "00000000-0000-0000-0000-000000000000");
    assert.equal(withEnv.secrets?.environment?.GRAFANA_DB_PASSWORD, "chosen-db");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the compose secrets: generated once, or taken from .env; one folder per consumer; read into the environment", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "signin-secrets-"));
  try {
    const uid = process.getuid?.() ?? 0;
    const gid = process.getgid?.() ?? 0;
    const run = (env: Record<string, string>) =>
      execFileSync("/bin/sh", [path.join(ROOT, "ops/compose/secrets.sh")], {
        encoding: "utf8",
        env: {
          PATH: process.env.PATH ?? "",
          SECRETS_DIR: dir,
          SECRETS_OWNERS: `postgres=${uid}:${gid} grafana=${uid}:${gid} daemon=${uid}:${gid}`,
          ...env,
        },
      });
    const first = run({ GRAFANA_DB_PASSWORD: "chosen-db" });
    const read = (file: string) => readFileSync(path.join(dir, file), "utf8");
    const admin = read("grafana/admin-password");
    assert.match(admin, /^[A-Za-z0-9]{24}$/, "a generated password");
    assert.ok(first.includes(`generated password ${admin}`), "the generated Grafana password is printed once");
    // The same value for both ends of each login.
    assert.equal(read("postgres/grafana-db-password"), "chosen-db");
    assert.equal(read("grafana/db-password"), "chosen-db");
    assert.equal(read("daemon/db-password"), read("postgres/ingest-db-password"));
    assert.notEqual(read("postgres/postgres-password"), read("daemon/db-password"));
    for (const folder of ["postgres", "grafana", "daemon"]) {
      assert.equal(statSync(path.join(dir, folder)).mode & 0o777, 0o700, `${folder}/ is its consumer's alone`);
    }
    // A second start keeps every value (PostgreSQL keeps the one it was initialised with) and prints nothing secret.
    const ingest = read("daemon/db-password");
    const second = run({ GRAFANA_ADMIN_PASSWORD: "too-late" });
    assert.equal(read("grafana/admin-password"), admin);
    assert.equal(read("daemon/db-password"), ingest);
    assert.ok(!second.includes(admin));

    // The entrypoint step: PGPASSWORD from PGPASSWORD_FILE, then the command unchanged.
    const out = execFileSync(
      "/bin/sh",
      [
        path.join(ROOT, "ops/compose/file-env.sh"),
        process.execPath,
        "-e",
        "process.stdout.write(JSON.stringify(process.env))",
      ],
      {
        encoding: "utf8",
        env: {
          PATH: process.env.PATH ?? "",
          TINI: "/usr/bin/env",
          PGPASSWORD_FILE: path.join(dir, "daemon/db-password"),
        },
      },
    );
    const env = JSON.parse(out) as Record<string, string>;
    assert.equal(env.PGPASSWORD, ingest);
    assert.equal(env.PGPASSWORD_FILE, undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test(".dockerignore keeps dependencies, secrets and local data out of the build context", () => {
  const ignored = readFileSync(path.join(ROOT, ".dockerignore"), "utf8").split("\n");
  for (const entry of ["node_modules", ".env", "data", ".git", "test"]) {
    assert.ok(ignored.includes(entry), `.dockerignore lists ${entry}`);
  }
  // What the image copies is not ignored.
  for (const copied of [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) =>
    (m[1] ?? "").split(" "),
  )) {
    assert.ok(!ignored.includes(copied), `${copied} is copied by the Dockerfile`);
  }
});
