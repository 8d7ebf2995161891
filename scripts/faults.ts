// The full fault campaign (issue 4): `npm run test:faults -- [--seed N] [--minutes M] [--keep]`.
// Prints progress, then exactly one summary line last; exits 1 when anything was lost, duplicated, regressed or
// leaked, a stream stalled, or any process misbehaved.

import { parseArgs } from "node:util";

import { runCampaign } from "../test/faults/campaign.ts";

const { values } = parseArgs({
  options: {
    seed: { type: "string" },
    minutes: { type: "string", default: "10" },
    keep: { type: "boolean", default: false },
    verbose: { type: "boolean", default: false },
  },
});
const seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31);
const minutes = Number(values.minutes);
if (!Number.isInteger(seed) || !(minutes > 0 && minutes <= 60)) {
  process.stderr.write("usage: node scripts/faults.ts [--seed <integer>] [--minutes <1..60>] [--keep]\n");
  process.exit(64);
}
const log = (line: string) => process.stderr.write(line + "\n");
log(`fault campaign: seed ${seed}, ${minutes} min of faults (repeat with --seed ${seed})`);
const started = Date.now();
const result = await runCampaign({
  seed,
  durationMs: minutes * 60_000,
  log,
  keep: values.keep,
  verbose: values.verbose,
});
log(
  `episodes ${result.episodes}, daemon processes ${result.processes}, ${Math.round((Date.now() - started) / 1000)} s`,
);
log(`signals that stopped a running daemon: SIGKILL ${result.sigkills}, SIGTERM ${result.sigterms}`);
log(
  `poison events published ${result.poisonPublished}, rejected as expected ${result.poisonRejected}; streams stalled ${result.stalled}; SIGTERM while PostgreSQL was blackholed: exit 0 after ${JSON.stringify(result.blackholeSigtermMs)} ms`,
);
log(`injected by kind: ${JSON.stringify(result.byKind)}`);
log(`process exits: ${JSON.stringify(result.exits)}`);
log(
  `events published ${result.eventsPublished} (re-published ${result.republished}), checkpoint samples ${result.checkpointSamples}, stale ${result.stale}, phantoms ${result.phantoms}`,
);
for (const problem of result.problems) {
  log(`PROBLEM: ${problem}`);
}
if (values.keep) {
  log(`work directory kept: ${result.workDir}`);
}
process.stdout.write(result.line + "\n");
process.exit(result.ok ? 0 : 1);
