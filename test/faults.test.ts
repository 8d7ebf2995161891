// The short fault campaign (issue 4 and issue 12, "Proof"): every kind of fault once, against real daemon processes, a dedicated
// PostgreSQL cluster behind a fault proxy and the continuously publishing simulator; then the checker. The full
// campaign is `npm run test:faults` (scripts/faults.ts). A failure prints the seed: FAULTS_SEED=<seed> repeats it.

import assert from "node:assert/strict";
import { test } from "node:test";

import { startSimulator } from "../src/simulator/server.ts";
import { ALL_KINDS, runCampaign } from "./faults/campaign.ts";
import { isCommitMessage } from "./faults/pg-proxy.ts";

const seed = process.env.FAULTS_SEED ? Number(process.env.FAULTS_SEED) : 20261128;

test(
  `short fault campaign (seed ${seed}): nothing lost, duplicated or leaked; every fault kind injected`,
  // A hang guard, not a speed check: every kind once and retries (~110 s on a quiet machine, several times that on
  // a loaded one), then the final run and the checker.
  { timeout: 540_000 },
  async (t) => {
    const result = await runCampaign({ seed, durationMs: 0, everyKind: true, log: (line) => t.diagnostic(line) });
    t.diagnostic(result.line);
    t.diagnostic(`fired per kind: ${JSON.stringify(result.fired)}; exits: ${JSON.stringify(result.exits)}`);
    assert.deepEqual(result.problems, [], result.problems.join("\n"));
    assert.equal(result.lost, 0, `lost: ${result.lostIds.slice(0, 10).join(", ")}`);
    assert.equal(result.duplicates, 0);
    assert.equal(result.stale, 0);
    assert.equal(result.phantoms, 0);
    assert.equal(result.regressions, 0);
    assert.equal(result.secretHits, 0);
    assert.equal(result.stalled, 0, "no stream stalled");
    assert.ok(result.poisonRejected > 0, "poison events were published and rejected");
    assert.ok(result.expected > 0 && result.stored >= result.expected, result.line);
    assert.ok(result.checkpointSamples > 100, "the checkpoint was sampled");
    assert.deepEqual(result.missing, [], `fault kinds that never happened: ${result.missing.join(", ")}`);
    assert.equal(Object.keys(result.fired).length, ALL_KINDS.length);
    for (const kind of ["poison", "oversized", "retry-after-huge", "past-date", "pg-blackhole", "bi-squatter"]) {
      assert.ok((result.fired[kind] ?? 0) > 0, `issue 12's ${kind} fired`);
    }
    assert.ok(result.sigkills >= 3 && result.sigterms >= 1, JSON.stringify(result.exits));
    assert.match(
      result.line,
      /^faults: seed \d+, injected \d+, expected \d+, stored \d+, lost 0, duplicates 0, checkpoint regressions 0, secrets in logs 0, poison rejected [1-9]\d*, stalled 0$/,
    );
  },
);

test("fault proxy: recognises COMMIT in simple-query and extended-protocol messages", () => {
  const q = (sql: string) => Buffer.from(`${sql}\0`);
  assert.equal(isCommitMessage(0x51, q("commit")), true);
  assert.equal(isCommitMessage(0x51, q("  COMMIT;")), true);
  assert.equal(isCommitMessage(0x51, q("select 'commit'")), false);
  assert.equal(isCommitMessage(0x50, Buffer.from("stmt1\0commit\0\0\0")), true);
  assert.equal(isCommitMessage(0x50, Buffer.from("\0insert into t values (1)\0\0\0")), false);
  assert.equal(isCommitMessage(0x42, q("commit")), false);
});

test("simulator: issuedTokens() lists every access token it issued (log canaries)", async () => {
  const sim = await startSimulator({ seed: 3, users: 2, historyDays: 0 });
  try {
    const token = async () => {
      const res = await fetch(`${sim.url}/${sim.tenantId}/oauth2/v2.0/token`, {
        method: "POST",
        body: new URLSearchParams({
          grant_type: "client_credentials",
          client_id: sim.clientId,
          client_secret: sim.clientSecret,
          scope: `${sim.url}/.default`,
        }),
      });
      return ((await res.json()) as { access_token: string }).access_token;
    };
    const a = await token();
    const b = await token();
    assert.deepEqual(new Set(sim.issuedTokens()), new Set([a, b]));
  } finally {
    await sim.close();
  }
});
