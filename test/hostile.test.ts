// Hostile or broken Graph and token endpoints (issue 12, section 3), each scripted as a simulator fault and driven
// through the real ingest path: real HTTP, the real Graph client, real PostgreSQL.

import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";

import { httpSettings } from "../src/app.ts";
import { CredentialError, EXIT, GraphProtocolError } from "../src/errors.ts";
import { MalformedPageError } from "../src/graph/client.ts";
import { GraphClock, MAX_PLAUSIBLE_SKEW_MS } from "../src/graph/clock.ts";
import { secretFields } from "../src/graph/credentials.ts";
import { createAgent } from "../src/graph/http.ts";
import { ClientCredentialsTokenProvider } from "../src/graph/token.ts";
import { NO_HTTP_OBSERVER } from "../src/metrics.ts";
import type { FaultRule } from "../src/simulator/faults.ts";
import { DEFAULT_CLIENT, type Simulator, startSimulator } from "../src/simulator/server.ts";
import { readCheckpoint } from "../src/store/checkpoints.ts";
import { HOUR, MINUTE, systemClock } from "../src/time.ts";
import { daemonEnv, runCli } from "./helpers/daemon.ts";
import { silentLog, simulatorSuite, type TestDatabase } from "./helpers/db.ts";
import { expectedIds, ingestHarness, storedIds } from "./helpers/ingest.ts";

// A secret whose form- and percent-encodings differ from it, as an echoed form would carry it.
const SECRET = "s3cr3t~Sim/+=value&x y";
const FED_APP = "33333333-3333-4333-8333-333333333333";
const FED_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2EifQ.ZmVkZXJhdGVkLXNpZ25hdHVyZQ";

let sim: Simulator;
const { fresh } = simulatorSuite(
  () =>
    startSimulator({
      seed: 12,
      generate: false,
      historyDays: 1,
      clients: { [DEFAULT_CLIENT]: SECRET, [FED_APP]: "unused-secret" },
      federatedTokens: { [FED_APP]: [FED_TOKEN] },
    }),
  (s) => (sim = s),
);

let seeded = 0;
/** Adds `n` sign-ins spread over the last hour (times relative to the simulator's clock, so any date works). */
function seed(n: number): void {
  const now = sim.now().getTime();
  sim.addEvents(
    Array.from({ length: n }, (_, i) => ({
      id: `hostile-${seeded + i}`,
      createdDateTime: new Date(now - 5 * MINUTE - i * 1000).toISOString(),
      userPrincipalName: `user${i}@example.com`,
      status: { errorCode: 0 },
    })),
  );
  seeded += n;
}

function start(rules: FaultRule[]): void {
  sim.setFaults(rules);
  sim.resetRequests();
}
const requests = (kind: "graph" | "token") => sim.requests().filter((r) => r.kind === kind);

async function cycles(db: TestDatabase): Promise<Array<{ outcome: string; error: string | null }>> {
  return (
    await db.pool.query<{ outcome: string; error: string | null }>("select outcome, error from cycles order by id")
  ).rows;
}

/** A failing cycle stored nothing beyond the first page and left the checkpoint alone; then a clean one completes. */
async function failsThenRecovers(db: TestDatabase, env: Record<string, string>, rules: FaultRule[], code: string) {
  start(rules);
  // One window: the checkpoint stays unset until it is read whole. A generous HTTP_TIMEOUT: on a loaded machine a
  // slow stream must not time out (and be retried clean) before the check under test refuses it.
  env = { INITIAL_LOOKBACK: "3h", HTTP_TIMEOUT: "60s", ...env };
  const h = ingestHarness(sim, db, env);
  await assert.rejects(h.run(), (e: unknown) => {
    assert.ok(e instanceof MalformedPageError, String(e));
    assert.equal(e.code, code);
    return true;
  });
  assert.equal(await readCheckpoint(db.pool, sim.tenantId, "interactiveUser"), undefined, "checkpoint unmoved");
  assert.ok((await storedIds(db, sim.tenantId)).length <= Number(env.PAGE_SIZE ?? 999), "at most the first page");
  const faulty = requests("graph").filter((r) => r.fault !== undefined);
  assert.equal(faulty.length, 1, "a refused body is not fetched again within the cycle");
  const failure = (await cycles(db)).at(-1);
  assert.equal(failure?.outcome, "failure");
  await h.close();
  sim.setFaults([]);
  const clean = ingestHarness(sim, db, env);
  const result = await clean.run();
  assert.deepEqual(
    new Set(await storedIds(db, sim.tenantId)),
    expectedIds(sim, result.windows[0]!.from, result.windows.at(-1)!.to),
  );
  await clean.close();
  return failure?.error ?? "";
}

test("a 60 MB page of tiny items is refused while it streams (no heap blow-up), nothing from it stored, retried next cycle", async () => {
  seed(12);
  // Default PAGE_SIZE: the derived cap (999 × 32 KiB + 1 MiB ≈ 34 MB) stops the body long before its 60 MB.
  const error = await failsThenRecovers(
    await fresh(),
    {},
    [{ kind: "oversized", bytes: 60_000_000, match: { requestNumber: 1 } }],
    "body_too_large",
  );
  assert.match(error, /exceeds MAX_PAGE_BYTES \(33783808 bytes\)/);
  // (That it fits a small heap is proven with the real CLI below, in a 256 MB heap.)
  // With a Content-Length over the cap, the body is refused before a byte of it is read; a small PAGE_SIZE lowers it.
  const small = await failsThenRecovers(
    await fresh(),
    { PAGE_SIZE: "5" },
    [{ kind: "oversized", bytes: 3_000_000, contentLength: true, match: { requestNumber: 2 } }],
    "body_too_large",
  );
  assert.match(small, /exceeds MAX_PAGE_BYTES \(1212416 bytes\)/);
});

test("a page with invalid UTF-8 is refused with a classified error instead of being stored with U+FFFD", async () => {
  seed(12);
  const db = await fresh();
  const error = await failsThenRecovers(
    db,
    { PAGE_SIZE: "5" },
    [{ kind: "invalid-utf8", match: { requestNumber: 2 } }],
    "invalid_utf8",
  );
  assert.match(error, /not valid UTF-8/);
  const replaced = await db.pool.query("select count(*)::int as n from sign_ins where raw::text like '%\uFFFD%'");
  assert.equal(replaced.rows[0].n, 0, "no replacement character reached the database");
});

test("Retry-After of an hour, of 25 days (beyond a timer), as a far HTTP-date or nonsense: every wait is capped at MAX_RETRY_AFTER", async () => {
  seed(6);
  const db = await fresh();
  // A deadline well below any uncapped wait: a tenant silenced by the raw Retry-After would fail the cycle.
  const env = { MAX_RETRY_AFTER: "1s", CYCLE_DEADLINE: "60s", PAGE_SIZE: "5", MAX_RETRIES: "3" };
  for (const retryAfter of [
    "3600",
    "2200000",
    "Fri, 01 Jan 2100 00:00:00 GMT",
    "99999999999999999999999",
    "soon",
    "-5",
  ]) {
    start([{ kind: "status", status: 429, retryAfter, match: { requestNumber: 1 }, times: 1 }]);
    const h = ingestHarness(sim, db, env);
    const first = await h.run();
    assert.ok(first.windows.length > 0, retryAfter);
    // The tenant-wide pause is capped too: the next cycle (same process, same budget) is not held back.
    const second = await h.run();
    assert.ok(second.windows.length > 0, `${retryAfter}: the next cycle ran`);
    const capped = h.logs().filter((l) => /capped at MAX_RETRY_AFTER/.test(String(l.msg)));
    const meaningful = /^\d{4,}|2100/.test(retryAfter);
    assert.equal(capped.length, meaningful ? 1 : 0, `${retryAfter}: the cap is logged once (${capped.length})`);
    if (meaningful) {
      assert.equal(capped[0]?.level, "warn");
      assert.equal(capped[0]?.cappedMs, 1000);
    }
    await h.close();
  }
  assert.ok((await cycles(db)).every((c) => c.outcome === "success"));
});

test("a Date header from 2001 is ignored (warned once), and windows keep moving", async () => {
  seed(6);
  const db = await fresh();
  start([]);
  const h = ingestHarness(sim, db, { PAGE_SIZE: "5" });
  const first = await h.run();
  seed(8);
  const past = "Mon, 01 Jan 2001 00:00:00 GMT";
  start([
    // The first request finds its token expired (401): the renewal's token response carries the Date too.
    { kind: "expire-token", times: 1 },
    { kind: "date", date: past, match: { token: true } },
    { kind: "date", date: past },
  ]);
  const second = await h.run();
  // Trusted, the 2001 clock would plan no window at all (its "now" lies before the checkpoint).
  assert.ok(second.windows.length > 0, "a window was planned");
  assert.ok(second.checkpoint! >= first.checkpoint!, "the checkpoint did not go back to 2001");
  assert.deepEqual(
    new Set(await storedIds(db, sim.tenantId)),
    expectedIds(sim, first.windows[0]!.from, second.windows.at(-1)!.to),
  );
  const clock = h.ingester.graphFor(sim.tenantId).clock;
  assert.ok(clock.ignoredDates >= 3, `every 2001 header was ignored (${clock.ignoredDates})`);
  assert.equal(clock.ignoring, true);
  const warnings = h.logs().filter((l) => /ignoring a Date header/.test(String(l.msg)));
  assert.equal(warnings.length, 1, "one warning per change, not per response");
  assert.equal(warnings[0]?.level, "warn");
  assert.ok(Number(warnings[0]?.skewMs) < -MAX_PLAUSIBLE_SKEW_MS);
  await h.close();
});

test("expires_in 0, negative, missing, garbage or huge: one token for a whole multi-page cycle", async () => {
  seed(30);
  for (const expiresIn of [0, -5, null, "soon", 1e12]) {
    const db = await fresh();
    start([{ kind: "token-lifetime", expiresIn, match: { token: true } }]);
    const h = ingestHarness(sim, db, { PAGE_SIZE: "5" });
    const result = await h.run();
    assert.ok(result.pages >= 6, `several pages (${result.pages})`);
    assert.equal(requests("token").length, 1, `expires_in ${String(expiresIn)}: one token request`);
    assert.ok(
      h.logs().some((l) => l.level === "warn" && /implausible expires_in/.test(String(l.msg))),
      "the bounded lifetime is logged",
    );
    await h.close();
  }
});

test("a hostile token endpoint echoing the request form: the client secret reaches neither cycles.error nor the logs", async () => {
  seed(3);
  const db = await fresh();
  start([{ kind: "echo", match: { token: true } }]);
  const h = ingestHarness(sim, db);
  await assert.rejects(h.run(), CredentialError);
  const stored = (await cycles(db)).at(-1)?.error ?? "";
  assert.match(stored, /\[redacted\]/, "the echoed form was there, redacted");
  assertNoSecret(stored + h.logText(), [SECRET]);
  await h.close();
});

test("a federated token echoed by the token endpoint, and an access token echoed by Graph, are redacted too", async () => {
  seed(3);
  const dir = mkdtempSync(path.join(tmpdir(), "hostile-"));
  const tokenFile = path.join(dir, "federated-token");
  writeFileSync(tokenFile, FED_TOKEN);
  const fedDb = await fresh();
  start([{ kind: "echo", match: { token: true } }]);
  const fed = ingestHarness(sim, fedDb, {
    AZURE_CLIENT_ID: FED_APP,
    AZURE_CLIENT_SECRET: "",
    AZURE_FEDERATED_TOKEN_FILE: tokenFile,
  });
  await assert.rejects(fed.run(), CredentialError);
  assertNoSecret(((await cycles(fedDb)).at(-1)?.error ?? "") + fed.logText(), [FED_TOKEN]);
  await fed.close();

  const db = await fresh();
  start([{ kind: "echo", status: 400, match: { requestNumber: 1 } }]);
  const h = ingestHarness(sim, db);
  await assert.rejects(h.run(), GraphProtocolError);
  const stored = (await cycles(db)).at(-1)?.error ?? "";
  assert.match(stored, /Authorization: Bearer \[redacted\]/);
  assertNoSecret(stored + h.logText(), [...sim.issuedTokens(), SECRET]);
  await h.close();
});

function assertNoSecret(text: string, secrets: string[]): void {
  for (const secret of secrets) {
    for (const form of [
      secret,
      encodeURIComponent(secret),
      new URLSearchParams({ s: secret }).toString().slice(2),
      JSON.stringify(secret).slice(1, -1),
    ]) {
      assert.ok(!text.includes(form), `a secret leaked: ${form.slice(0, 6)}…`);
    }
  }
}

test("token requests made before the last token was due back off (0, 0, 1 s, 2 s, 4 s …); a renewal on schedule does not", async () => {
  start([]);
  const harness = ingestHarness(sim, await fresh());
  const settings = httpSettings(harness.config);
  const dispatcher = createAgent(settings);
  let now = Date.UTC(2026, 5, 15, 12); // injected: the provider's cache and backoff read only this clock
  const waits: number[] = [];
  const tokens = new ClientCredentialsTokenProvider(
    {
      authorityHost: sim.url,
      tenantId: sim.tenantId,
      clientId: sim.clientId,
      fields: secretFields(SECRET),
      scope: `${sim.url}/.default`,
    },
    {
      dispatcher,
      settings,
      clock: new GraphClock(systemClock),
      log: silentLog,
      observer: NO_HTTP_OBSERVER,
      now: () => now,
      sleep: (ms) => {
        waits.push(ms);
        now += ms;
        return Promise.resolve();
      },
    },
  );
  const signal = new AbortController().signal;
  for (let i = 0; i < 6; i++) {
    await tokens.getToken(signal);
    tokens.invalidate(); // as after a 401 from Graph, again and again
  }
  assert.deepEqual(waits, [1000, 2000, 4000, 8000], "the first two go at once, then the waits double");
  assert.equal(requests("token").length, 6, "each fetch was a real token request");
  now += HOUR; // past the last token's renewal time (the simulator issues them for 3599 s)
  await tokens.getToken(signal);
  assert.equal(waits.length, 4, "a renewal on schedule goes at once");
  assert.equal(requests("token").length, 7);
  await tokens.getToken(signal);
  assert.equal(requests("token").length, 7, "then cached: no request while the token is fresh");
  await dispatcher.close();
  await harness.close();
});

test("the real CLI in a 256 MB heap: a 60 MB page exits 75 (not 134), a secret-echoing token endpoint exits 78; no secret in its output", async () => {
  seed(5);
  const db = await fresh();
  const env = daemonEnv(sim, db.url, {
    AZURE_CLIENT_SECRET: SECRET,
    INITIAL_LOOKBACK: "3h",
    NODE_OPTIONS: "--max-old-space-size=256",
  });
  start([{ kind: "oversized", bytes: 60_000_000 }]);
  const oversized = await runCli(["once"], env);
  assert.equal(oversized.code, EXIT.temporary, oversized.stdout + oversized.stderr);
  assert.ok(oversized.logs.some((l) => /exceeds MAX_PAGE_BYTES/.test(JSON.stringify(l))));
  assert.equal((await storedIds(db, sim.tenantId)).length, 0);
  start([{ kind: "echo", match: { token: true } }]);
  const echoed = await runCli(["once"], env);
  assert.equal(echoed.code, EXIT.config, echoed.stdout + echoed.stderr);
  assert.match(echoed.stdout + echoed.stderr, /\[redacted\]/);
  assertNoSecret(echoed.stdout + echoed.stderr + JSON.stringify(await cycles(db)), [SECRET]);
  sim.setFaults([]);
});
