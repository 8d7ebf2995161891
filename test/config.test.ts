import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { configTableMarkdown, loadConfig } from "../src/config.ts";
import { ConfigError } from "../src/errors.ts";

const valid = {
  AZURE_TENANT_ID: "00000000-0000-4000-8000-000000000001",
  AZURE_CLIENT_ID: "11111111-1111-4111-8111-111111111111",
  AZURE_CLIENT_SECRET: "s3cret~value",
};

test("defaults are applied and durations parsed", () => {
  const config = loadConfig(valid);
  assert.equal(config.tenants.length, 1);
  const tenant = config.tenants[0]!;
  assert.equal(tenant.graphEndpoint, "https://graph.microsoft.com");
  assert.equal(tenant.authorityHost, "https://login.microsoftonline.com");
  assert.deepEqual(tenant.streams, ["interactiveUser"]);
  assert.deepEqual(tenant.auth, { kind: "secret", secret: "s3cret~value" });
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
  assert.equal(config.tenants[0]?.graphEndpoint, "http://127.0.0.1:8080");
  assert.equal(config.tenants[0]?.authorityHost, "http://localhost:8080");
});

test("migrate needs no Azure credentials", () => {
  assert.doesNotThrow(() => loadConfig({}, { require: "database" }));
  assert.throws(() => loadConfig({}), ConfigError);
});

test("the README's configuration table is the one generated from the schema", () => {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  assert.ok(readme.includes(configTableMarkdown()), "README.md is out of date: paste `node src/cli.ts config-doc`");
});

test("national clouds set the login host, the Graph host and so the scope together", () => {
  const dod = loadConfig({ ...valid, AZURE_CLOUD: "usgov-dod" }).tenants[0]!;
  assert.equal(dod.authorityHost, "https://login.microsoftonline.us");
  assert.equal(dod.graphEndpoint, "https://dod-graph.microsoft.us");
  const china = loadConfig({ ...valid, AZURE_CLOUD: "china" }).tenants[0]!;
  assert.equal(china.authorityHost, "https://login.partner.microsoftonline.cn");
  assert.equal(china.graphEndpoint, "https://microsoftgraph.chinacloudapi.cn");
  assert.equal(loadConfig({ ...valid, AZURE_CLOUD: "usgov" }).tenants[0]?.graphEndpoint, "https://graph.microsoft.us");
  assert.throws(() => loadConfig({ ...valid, AZURE_CLOUD: "mars" }), /AZURE_CLOUD: "mars" is not a cloud/);
});

test("exactly one credential: secret, secret file, certificate, federated token or managed identity", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "cfg-"));
  const file = path.join(dir, "secret");
  writeFileSync(file, "from-file\n");
  const base = { AZURE_TENANT_ID: valid.AZURE_TENANT_ID, AZURE_CLIENT_ID: valid.AZURE_CLIENT_ID };
  assert.deepEqual(loadConfig({ ...base, AZURE_CLIENT_SECRET_FILE: file }).tenants[0]?.auth, {
    kind: "secret-file",
    path: file,
  });
  assert.deepEqual(loadConfig({ ...base, AZURE_FEDERATED_TOKEN_FILE: file }).tenants[0]?.auth, {
    kind: "federated",
    tokenFile: file,
  });
  assert.deepEqual(
    loadConfig({ AZURE_TENANT_ID: valid.AZURE_TENANT_ID, AZURE_MANAGED_IDENTITY: "true" }).tenants[0]?.auth,
    {
      kind: "managed-identity",
    },
  );
  assert.throws(() => loadConfig(base), /no credential is set/);
  assert.throws(
    () => loadConfig({ ...base, AZURE_CLIENT_SECRET: "x", AZURE_CLIENT_SECRET_FILE: file }),
    /several credentials/,
  );
  assert.throws(
    () => loadConfig({ ...base, AZURE_CLIENT_SECRET_FILE: path.join(dir, "missing") }),
    /not a readable file/,
  );
});

test("STREAMS selects streams; unknown names are refused", () => {
  const config = loadConfig({ ...valid, STREAMS: "interactiveUser, servicePrincipal,directoryAudits" });
  assert.deepEqual(config.tenants[0]?.streams, ["interactiveUser", "servicePrincipal", "directoryAudits"]);
  assert.throws(
    () => loadConfig({ ...valid, STREAMS: "interactiveUser,everything" }),
    /unknown streams \(everything\)/,
  );
});

test("a tenants file (YAML or JSON): defaults, per-tenant overrides, and every problem named by its place", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "tenants-"));
  const secret = path.join(dir, "secret");
  writeFileSync(secret, "shared\n");
  const yaml = path.join(dir, "tenants.yaml");
  writeFileSync(
    yaml,
    [
      "defaults:",
      "  clientId: 22222222-2222-4222-8222-222222222222",
      `  clientSecretFile: ${secret}`,
      "  streams: [interactiveUser, nonInteractiveUser]",
      "tenants:",
      "  - tenantId: aaaaaaaa-0000-4000-8000-000000000001",
      "    name: Contoso",
      "  - tenantId: aaaaaaaa-0000-4000-8000-000000000002",
      "    clientId: 33333333-3333-4333-8333-333333333333",
      "    clientSecret: own-secret",
      "    streams: [servicePrincipal]",
    ].join("\n"),
  );
  const config = loadConfig({ TENANTS_FILE: yaml, AZURE_CLIENT_SECRET: "env-secret-is-replaced" });
  assert.equal(config.tenants.length, 2);
  const [a, b] = config.tenants;
  assert.equal(a?.name, "Contoso");
  assert.deepEqual(a?.auth, { kind: "secret-file", path: secret });
  assert.deepEqual(a?.streams, ["interactiveUser", "nonInteractiveUser"]);
  assert.equal(b?.clientId, "33333333-3333-4333-8333-333333333333");
  assert.deepEqual(b?.auth, { kind: "secret", secret: "own-secret" });
  assert.deepEqual(b?.streams, ["servicePrincipal"]);

  const json = path.join(dir, "tenants.json");
  writeFileSync(
    json,
    JSON.stringify({
      tenants: [
        { tenantId: "not-a-tenant", clientId: "x", clientSecret: "s" },
        { tenantId: "aaaaaaaa-0000-4000-8000-000000000009", colour: "blue" },
      ],
    }),
  );
  let message = "";
  try {
    loadConfig({ TENANTS_FILE: json });
  } catch (error) {
    message = (error as Error).message;
  }
  assert.match(message, /TENANTS_FILE tenants\[0\] \(not-a-tenant\): AZURE_TENANT_ID/);
  assert.match(message, /TENANTS_FILE tenants\[0\] \(not-a-tenant\): AZURE_CLIENT_ID/);
  assert.match(message, /TENANTS_FILE tenants\[1\] \(aaaaaaaa-0000-4000-8000-000000000009\): unknown key "colour"/);
  assert.match(message, /tenants\[1\].*no credential is set/);
  assert.ok(!message.includes('"s"'), "secrets are not echoed");
});

test("tenants file: one tenant's invalid credential does not hide another tenant's missing one", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "cfg-tenants-"));
  const json = path.join(dir, "tenants.json");
  const clientId = "33333333-3333-4333-8333-333333333333";
  writeFileSync(
    json,
    JSON.stringify({
      tenants: [
        { tenantId: "aaaaaaaa-0000-4000-8000-000000000001", clientId, clientSecret: " padded" },
        { tenantId: "aaaaaaaa-0000-4000-8000-000000000002", clientId },
      ],
    }),
  );
  assert.throws(
    () => loadConfig({ TENANTS_FILE: json }),
    (error: Error) =>
      /tenants\[0\].*AZURE_CLIENT_SECRET: the value given has leading or trailing whitespace/.test(error.message) &&
      !/tenants\[0\][^\n]*no credential is set/.test(error.message) &&
      /tenants\[1\][^\n]*no credential is set/.test(error.message),
  );
});

test("_FILE variants: DATABASE_URL_FILE and AZURE_CLIENT_CERTIFICATE_PASSWORD_FILE are read and trimmed; both set or unreadable is a problem", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "config-file-variants-"));
  const urlFile = path.join(dir, "url");
  writeFileSync(urlFile, "postgres://u:p%40ss@db:5432/signin\n");
  const passwordFile = path.join(dir, "password");
  writeFileSync(passwordFile, "  pem-password \n");
  const certificate = path.join(dir, "cert.pem");
  writeFileSync(certificate, "x");
  const config = loadConfig({
    AZURE_TENANT_ID: valid.AZURE_TENANT_ID,
    AZURE_CLIENT_ID: valid.AZURE_CLIENT_ID,
    AZURE_CLIENT_CERTIFICATE_PATH: certificate,
    AZURE_CLIENT_CERTIFICATE_PASSWORD_FILE: passwordFile,
    DATABASE_URL_FILE: urlFile,
  });
  assert.equal(config.databaseUrl, "postgres://u:p%40ss@db:5432/signin");
  assert.deepEqual(config.tenants[0]?.auth, { kind: "certificate", path: certificate, password: "pem-password" });

  const problems = (env: Record<string, string>): string => {
    try {
      loadConfig({ ...valid, ...env });
    } catch (error) {
      assert.ok(error instanceof ConfigError);
      return error.message;
    }
    return "";
  };
  assert.match(
    problems({ DATABASE_URL: "postgres://a@b/c", DATABASE_URL_FILE: urlFile }),
    /DATABASE_URL and DATABASE_URL_FILE are both set: keep one/,
  );
  assert.match(
    problems({ DATABASE_URL_FILE: path.join(dir, "missing") }),
    /DATABASE_URL_FILE: .*missing is not readable \(ENOENT\)/,
  );
  const empty = path.join(dir, "empty");
  writeFileSync(empty, " \n");
  assert.match(problems({ DATABASE_URL_FILE: empty }), /DATABASE_URL_FILE: .*empty is empty/);
  const { AZURE_CLIENT_SECRET: _, ...withoutSecret } = valid;
  assert.match(
    problems({ ...withoutSecret, AZURE_CLIENT_SECRET_FILE: empty }).replace(/\n/g, " "),
    /AZURE_CLIENT_SECRET_FILE: .* is an empty file/,
  );
  assert.match(
    problems({ AZURE_CLIENT_SECRET_FILE: passwordFile }),
    /several credentials are set \(secret, secret-file\)/,
  );
});

test("POLL_SCHEDULE: every field within its range, steps included", () => {
  const schedule = (text: string) => {
    try {
      return loadConfig({ ...valid, POLL_SCHEDULE: text }).pollSchedule;
    } catch (error) {
      return (error as Error).message;
    }
  };
  for (const good of [
    "*/5 * * * *",
    "*/60 * * * *",
    "0 */6 * * *",
    "30 2 * * mon-fri",
    "*/30 * * * * *",
    "0 0 1,15 * *",
  ]) {
    assert.equal(schedule(good), good);
  }
  for (const [bad, says] of [
    // node-cron accepts these (and runs them as something else): the field ranges refuse them.
    ["*/61 * * * *", /step \/61 in the minute field; use 1..60/],
    ["*/100 * * * *", /step \/100 in the minute field/],
    ["0 */25 * * *", /step \/25 in the hour field; use 1..24/],
    // node-cron refuses these itself.
    ["60 * * * *", /not a valid cron expression/],
    ["0 24 * * *", /not a valid cron expression/],
    ["*/0 * * * *", /not a valid cron expression/],
    ["* * *", /not a valid cron expression/],
  ] as const) {
    assert.match(schedule(bad), says, bad);
  }
});

test("an invalid AZURE_CLIENT_ID is reported once, not also as missing", () => {
  try {
    loadConfig({ ...valid, AZURE_CLIENT_ID: "xyz" });
    assert.fail("accepted");
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    assert.deepEqual(error.problems, [
      'AZURE_CLIENT_ID: "xyz" is not a GUID; copy the Application (client) ID from the app registration',
    ]);
  }
});

test("DATA_DIR (for the embedded database) must be a writable directory on a real file system, or creatable", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "config-data-dir-"));
  const file = path.join(dir, "file");
  writeFileSync(file, "");
  const dataDir = (value: string) => {
    try {
      return loadConfig({ ...valid, DATA_DIR: value }).dataDir;
    } catch (error) {
      return (error as Error).message;
    }
  };
  assert.equal(dataDir(path.join(dir, "new", "deeper")), path.join(dir, "new", "deeper"));
  assert.match(dataDir(file), /DATA_DIR: ".*file" is a file, not a directory/);
  assert.match(dataDir(path.join(file, "sub")), /cannot be created: .*file is a file/);
  assert.match(dataDir("/proc/x"), /proc pseudo file system/);
  assert.match(dataDir("/sys/kernel/x"), /sysfs pseudo file system/);
  // With DATABASE_URL the directory is not used, so not checked.
  assert.equal(loadConfig({ ...valid, DATA_DIR: file, DATABASE_URL: "postgres://a@b/c" }).dataDir, file);
});
