// Many tenants, several streams and every local auth flow, against the simulator and a real PostgreSQL.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";

import { pino } from "pino";

import { createIngester } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { CredentialError } from "../src/errors.ts";
import { type Simulator, startSimulator } from "../src/simulator/server.ts";
import { readCheckpoint } from "../src/store/checkpoints.ts";
import { StreamLeases } from "../src/store/leases.ts";
import { createTestDatabase, type TestDatabase } from "./helpers/db.ts";
import { runSingle } from "./helpers/ingest.ts";

const T1 = "aaaaaaaa-0000-4000-8000-000000000001";
const T2 = "aaaaaaaa-0000-4000-8000-000000000002";
const T3 = "aaaaaaaa-0000-4000-8000-000000000003";
const APP = "22222222-2222-4222-8222-222222222222";
const CERT_APP = "33333333-3333-4333-8333-333333333333";
const FED_APP = "44444444-4444-4444-8444-444444444444";

const dir = mkdtempSync(path.join(tmpdir(), "tenants-test-"));
function certificate(name: string): { pem: string; cert: string } {
  const key = path.join(dir, `${name}.key`);
  const crt = path.join(dir, `${name}.crt`);
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      key,
      "-out",
      crt,
      "-days",
      "2",
      "-subj",
      `/CN=${name}`,
    ],
    {
      stdio: "ignore",
    },
  );
  const pem = path.join(dir, `${name}.pem`);
  writeFileSync(pem, readFileSync(crt, "utf8") + readFileSync(key, "utf8"));
  return { pem, cert: readFileSync(crt, "utf8") };
}

let sim: Simulator;
let db: TestDatabase;
const good = certificate("good");
const other = certificate("other");
const federated = path.join(dir, "federated-token");
const secretFile = path.join(dir, "secret");

before(async () => {
  writeFileSync(federated, "eyJfederated.token.1\n");
  writeFileSync(secretFile, "app-secret\n");
  sim = await startSimulator({
    seed: 5,
    users: 15,
    signInsPerUserPerDay: 20,
    historyDays: 1,
    tenants: [T1, T2, T3],
    clients: { [APP]: "app-secret", [CERT_APP]: "unused", [FED_APP]: "unused" },
    clientCertificates: { [CERT_APP]: good.cert },
    federatedTokens: { [FED_APP]: ["eyJfederated.token.1"] },
  });
  db = await createTestDatabase();
});
after(async () => {
  await sim.close();
  await db.drop();
});

function configFor(tenants: object[]) {
  const file = path.join(dir, `tenants-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify({ defaults: { authorityHost: sim.url, graphEndpoint: sim.url }, tenants }));
  return loadConfig({
    DATABASE_URL: db.url,
    TENANTS_FILE: file,
    INITIAL_LOOKBACK: "6h",
    RETRY_BASE_DELAY: "10ms",
    MAX_RETRIES: "2",
    GRAPH_BUDGET_PER_TENANT: "10000",
  });
}
const log = pino({ level: "silent" });

test("many tenants: each (tenant, stream) has its own checkpoint; one failing tenant never stalls the others", async () => {
  const config = configFor([
    { tenantId: T1, clientId: APP, clientSecret: "app-secret", streams: ["interactiveUser", "servicePrincipal"] },
    { tenantId: T2, clientId: APP, clientSecretFile: secretFile },
    { tenantId: T3, clientId: APP, clientSecret: "revoked-secret" },
  ]);
  const leases = new StreamLeases(db.url, log, {
    kind: "run",
    ttlMs: config.leaseTtlMs,
    heartbeatMs: config.leaseHeartbeatMs,
  });
  const ingester = createIngester(config, db.pool, log, { leases });
  const outcomes = await ingester.runAll(new AbortController().signal);
  await ingester.close();
  await leases.close();
  const byKey = new Map(outcomes.map((o) => [`${o.target.tenant.tenantId}/${o.target.stream.name}`, o]));
  assert.equal(outcomes.length, 4);
  assert.ok(byKey.get(`${T1}/interactiveUser`)?.result);
  assert.ok(byKey.get(`${T1}/servicePrincipal`)?.result);
  assert.ok(byKey.get(`${T2}/interactiveUser`)?.result, "secret from a file works");
  const failed = byKey.get(`${T3}/interactiveUser`);
  assert.ok(failed?.error instanceof CredentialError && failed.error.code === "AADSTS7000215");
  for (const key of [`${T1}/interactiveUser`, `${T1}/servicePrincipal`, `${T2}/interactiveUser`]) {
    const [tenant, stream] = key.split("/") as [string, string];
    assert.ok(await readCheckpoint(db.pool, tenant, stream), `${key} has its own checkpoint`);
  }
  assert.equal(await readCheckpoint(db.pool, T3, "interactiveUser"), undefined);
  const types = await db.pool.query(
    "select tenant_id, sign_in_event_type, count(*)::int as n from sign_ins group by 1, 2 order by 1, 2",
  );
  const t1Types = types.rows.filter((r) => r.tenant_id === T1).map((r) => r.sign_in_event_type);
  assert.deepEqual(t1Types, ["interactiveUser", "servicePrincipal"], "beta stream rows carry their event type");
  assert.ok(types.rows.some((r) => r.tenant_id === T2 && r.n > 0));
  const graphCalls = sim.requests().filter((r) => r.kind === "graph");
  assert.ok(
    graphCalls.some(
      (r) =>
        r.path.startsWith("/beta/") &&
        String(r.query.$filter).includes("signInEventTypes/any(t: t eq 'servicePrincipal')"),
    ),
    "the servicePrincipal stream queries beta with its event type",
  );
});

test("certificate credentials: a PS256 client assertion with x5t#S256 is accepted; another certificate is refused", async () => {
  const ok = configFor([
    { tenantId: T1, clientId: CERT_APP, clientCertificatePath: good.pem, streams: ["interactiveUser"] },
  ]);
  const ingester = createIngester(ok, db.pool, log);
  await runSingle(ingester);
  await ingester.close();

  const wrong = configFor([{ tenantId: T1, clientId: CERT_APP, clientCertificatePath: other.pem }]);
  const refused = createIngester(wrong, db.pool, log);
  await assert.rejects(runSingle(refused), (e: unknown) => e instanceof CredentialError && e.code === "AADSTS700027");
  await refused.close();
});

test("workload identity: the federated token file is the client assertion, re-read at every renewal", async () => {
  const config = configFor([{ tenantId: T2, clientId: FED_APP, federatedTokenFile: federated }]);
  const ingester = createIngester(config, db.pool, log);
  await runSingle(ingester);
  writeFileSync(federated, "eyJrotated.but.unknown\n");
  // Graph finds the token expired (401): the renewal reads the file again.
  sim.setFaults([{ kind: "expire-token", times: 1 }]);
  await assert.rejects(runSingle(ingester), CredentialError);
  sim.setFaults([]);
  await ingester.close();
});
