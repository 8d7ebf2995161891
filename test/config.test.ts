import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { configTableMarkdown, loadConfig } from "../src/config.ts";
import { ConfigError } from "../src/errors.ts";

const valid = {
  AZURE_TENANT_ID: "00000000-0000-4000-8000-000000000001",
  AZURE_CLIENT_ID: "11111111-1111-4111-8111-111111111111",
  AZURE_CLIENT_SECRET: "s3cret~value",
};

test("defaults are applied and durations parsed", () => {
  const config = loadConfig(valid);
  assert.equal(config.graphEndpoint, "https://graph.microsoft.com");
  assert.equal(config.authorityHost, "https://login.microsoftonline.com");
  assert.equal(config.pollSchedule, "*/5 * * * *");
  assert.equal(config.initialLookbackMs, 7 * 86_400_000);
  assert.equal(config.overlapMs, 30 * 60_000);
  assert.equal(config.settleMs, 2 * 60_000);
  assert.equal(config.pageSize, 999);
  assert.equal(config.databaseUrl, undefined);
  assert.equal(config.dataDir, "./data");
  assert.ok(Object.isFrozen(config));
});

test("every bad or missing value is reported at once, naming the variable and the fix", () => {
  let error: unknown;
  try {
    loadConfig({
      AZURE_CLIENT_ID: "not-a-guid",
      AZURE_CLIENT_SECRET: " padded ",
      PAGE_SIZE: "5000",
      OVERLAP: "30 minutes",
      POLL_SCHEDULE: "every 5 minutes",
      GRAPH_ENDPOINT: "http://graph.example.com",
      LOG_LEVEL: "loud",
    });
  } catch (e) {
    error = e;
  }
  assert.ok(error instanceof ConfigError);
  const text = error.message;
  for (const name of [
    "AZURE_TENANT_ID is not set",
    "AZURE_CLIENT_ID",
    "PAGE_SIZE",
    "OVERLAP",
    "POLL_SCHEDULE",
    "GRAPH_ENDPOINT",
    "LOG_LEVEL",
    "AZURE_CLIENT_SECRET",
  ]) {
    assert.ok(text.includes(name), `mentions ${name}: ${text}`);
  }
  assert.equal(error.problems.length, 8);
  assert.ok(text.includes("1..1000"));
  assert.ok(text.includes("45s, 15m, 2h or 7d"));
  assert.ok(text.includes("only accepted for loopback"));
  assert.ok(!text.includes("padded"), "a secret's value is never echoed");
});

test("http:// is accepted for loopback hosts only", () => {
  const config = loadConfig({
    ...valid,
    GRAPH_ENDPOINT: "http://127.0.0.1:8080",
    AZURE_AUTHORITY_HOST: "http://localhost:8080/",
  });
  assert.equal(config.graphEndpoint, "http://127.0.0.1:8080");
  assert.equal(config.authorityHost, "http://localhost:8080");
});

test("migrate needs no Azure credentials", () => {
  assert.doesNotThrow(() => loadConfig({}, { require: "database" }));
  assert.throws(() => loadConfig({}), ConfigError);
});

test("the README's configuration table is the one generated from the schema", () => {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  assert.ok(readme.includes(configTableMarkdown()), "README.md is out of date: paste `node src/cli.ts config-doc`");
});
