// An old Node (many machines have 20) gets one clear sentence and the way to Node 24, not a stack trace about
// ".ts": `npm start`, `npm run demo` and `npm test` go through bin/, plain JavaScript that checks first.

import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

// @ts-expect-error -- plain JavaScript without types (it must parse on any Node)
import { supported } from "../bin/require-node.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const OLD_NODE = "/usr/bin/node";

function oldNodeVersion(): string | undefined {
  if (!existsSync(OLD_NODE)) {
    return undefined;
  }
  const version = execFileSync(OLD_NODE, ["-p", "process.versions.node"], { encoding: "utf8" }).trim();
  return (supported as (v: string) => boolean)(version) ? undefined : version;
}

test("the version rule: 22.19 and later", () => {
  const ok = supported as (v: string) => boolean;
  assert.equal(ok("24.0.0"), true);
  assert.equal(ok("22.19.0"), true);
  assert.equal(ok("23.1.0"), true);
  assert.equal(ok("22.18.9"), false);
  assert.equal(ok("20.20.2"), false);
  assert.equal(ok("18.0.0"), false);
});

test("on an old Node every entry point says which Node is required and how to get it (exit 78)", (t) => {
  const version = oldNodeVersion();
  if (!version) {
    t.skip(`${OLD_NODE} is missing or already ≥ 22.19`);
    return;
  }
  for (const args of [
    ["bin/signin-ingest.mjs", "status"],
    ["bin/signin-ingest.mjs", "run"],
    ["bin/demo.mjs"],
    ["bin/require-node.mjs"],
  ]) {
    const result = spawnSync(OLD_NODE, args, { cwd: ROOT, encoding: "utf8", env: { PATH: "/usr/bin:/bin" } });
    assert.equal(result.status, 78, `${args.join(" ")}: ${result.stderr}`);
    assert.match(result.stderr, /^signin-ingest: Node ≥ 22\.19 is required/);
    assert.ok(result.stderr.includes(`this is Node v${version}`));
    assert.match(result.stderr, /macOS: .*brew install node@24/);
    assert.match(result.stderr, /Windows: .*winget install/);
    assert.doesNotMatch(result.stderr, /ERR_UNKNOWN_FILE_EXTENSION|at /);
    assert.equal(result.stdout, "");
  }
});

test("npm scripts go through the launchers; on this Node they pass the arguments on", () => {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
    scripts: Record<string, string>;
    bin: Record<string, string>;
  };
  assert.equal(pkg.scripts.start, "node bin/signin-ingest.mjs run");
  assert.equal(pkg.scripts.demo, "node bin/demo.mjs");
  assert.match(pkg.scripts.test ?? "", /^node bin\/require-node\.mjs && /);
  assert.match(pkg.scripts.check ?? "", /^node bin\/require-node\.mjs && /);
  assert.equal(pkg.bin["signin-ingest"], "bin/signin-ingest.mjs");
  assert.match(readFileSync(new URL("../.npmrc", import.meta.url), "utf8"), /^engine-strict=true$/m);
  const help = spawnSync(process.execPath, ["bin/signin-ingest.mjs", "--help"], { cwd: ROOT, encoding: "utf8" });
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /^Usage: /m);
});
