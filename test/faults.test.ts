// The short fault campaign (issue 4, "Proof"): every kind of fault once, against real daemon processes, a dedicated
// PostgreSQL cluster behind a fault proxy and the continuously publishing simulator; then the checker. The full
// campaign is `npm run test:faults` (scripts/faults.ts). A failure prints the seed: FAULTS_SEED=<seed> repeats it.

import assert from "node:assert/strict";
import { test } from "node:test";

import { ALL_KINDS, runCampaign } from "./faults/campaign.ts";

const seed = process.env.FAULTS_SEED ? Number(process.env.FAULTS_SEED) : 20261128;

test(`short fault campaign (seed ${seed}): nothing lost, duplicated or leaked; every fault kind injected`, { timeout: 180_000 }, async (t) => {
  const result = await runCampaign({ seed, durationMs: 75_000, everyKind: true, log: (line) => t.diagnostic(line) });
  t.diagnostic(result.line);
  t.diagnostic(`fired per kind: ${JSON.stringify(result.fired)}; exits: ${JSON.stringify(result.exits)}`);
  assert.deepEqual(result.problems, [], result.problems.join("\n"));
  assert.equal(result.lost, 0, `lost: ${result.lostIds.slice(0, 10).join(", ")}`);
  assert.equal(result.duplicates, 0);
  assert.equal(result.stale, 0);
  assert.equal(result.phantoms, 0);
  assert.equal(result.regressions, 0);
  assert.equal(result.secretHits, 0);
  assert.ok(result.expected > 0 && result.stored >= result.expected, result.line);
  assert.ok(result.checkpointSamples > 100, "the checkpoint was sampled");
  assert.deepEqual(result.missing, [], `fault kinds that never happened: ${result.missing.join(", ")}`);
  assert.equal(Object.keys(result.fired).length, ALL_KINDS.length);
  assert.ok(result.sigkills >= 3 && result.sigterms >= 1, JSON.stringify(result.exits));
  assert.match(result.line, /^faults: seed \d+, injected \d+, expected \d+, stored \d+, lost 0, duplicates 0, checkpoint regressions 0, secrets in logs 0$/);
});
