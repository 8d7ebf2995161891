// `import` shows its progress on a terminal as `once` and `backfill` do (issue 15): files and records read, events
// stored, the rate and the current file, one line redrawn on stderr (PROGRESS=auto on a TTY, on, off). The hook on a
// real PostgreSQL, the line with an injected clock, and the real CLI in a child process.

import assert from "node:assert/strict";
import { test } from "node:test";

import { formatImportProgress, showImportProgress } from "../src/commands/import-progress.ts";
import { type ImportProgress, importFiles } from "../src/io/import.ts";
import { runCli } from "./helpers/daemon.ts";
import { importBed } from "./helpers/import.ts";

const TENANT = "t-progress";
const bed = importBed(TENANT, new Date("2026-03-01T00:00:00Z"));

/** A Graph page of `n` sign-ins, ids prefixed by `tag`. */
function page(tag: string, n: number): string {
  const value = Array.from({ length: n }, (_, i) => ({
    id: `${tag}-${String(i)}`,
    createdDateTime: new Date(Date.UTC(2026, 1, 1) + i * 60_000).toISOString(),
    userPrincipalName: `user${String(i % 7)}@example.com`,
    status: { errorCode: 0 },
  }));
  return JSON.stringify({ value });
}

/** What a terminal shows: the text after the last redraw of each line (`\r\x1b[2K` starts a redraw). */
function redraws(stderr: string): string[] {
  return stderr
    .split("\r\x1b[2K")
    .map((s) => s.trim())
    .filter((s) => s.startsWith("import · "));
}

test("importFiles reports each file's start, every stored batch and the end, with running totals", async () => {
  const db = await bed.fresh();
  const a = await bed.tmpFile("progress-a.json", page("a", 25));
  const b = await bed.tmpFile("progress-b.json", page("b", 12) + "\n");
  const seen: ImportProgress[] = [];
  const summary = await importFiles([a, b], bed.deps(db, { batchSize: 10, onProgress: (p) => seen.push({ ...p }) }));
  assert.equal(summary.totals.inserted, 37);
  // a: start, 3 batches (10, 10, 5); b: start, 2 batches (10, 2); the end.
  assert.deepEqual(
    seen.map((p) => [p.file === a ? "a" : p.file === b ? "b" : p.file, p.filesDone, p.inserted, p.finished]),
    [
      ["a", 0, 0, false],
      ["a", 0, 10, false],
      ["a", 0, 20, false],
      ["a", 0, 25, false],
      ["b", 1, 25, false],
      ["b", 1, 35, false],
      ["b", 1, 37, false],
      ["b", 2, 37, true],
    ],
  );
  assert.ok(seen.every((p) => p.files === 2));
  assert.equal(seen.at(-1)?.read, 37);
});

test("the progress line: counts, rate, elapsed time and the file; redrawn at most every interval, then ended", () => {
  const p: ImportProgress = {
    filesDone: 2,
    files: 40,
    file: "archive/SigninActivities3.json",
    read: 61_200,
    inserted: 60_950,
    updated: 0,
    unchanged: 50,
    rejected: 3,
    duplicates: 0,
    skipped: 0,
    finished: false,
  };
  assert.equal(
    formatImportProgress(p, 8000),
    "import · files 2/40 · 61,200 records read · 61,000 stored (60,950 new) · 3 rejected · 7,650 records/s · 8s · archive/SigninActivities3.json",
  );
  assert.equal(
    formatImportProgress({ ...p, filesDone: 40, rejected: 0, finished: true }, 10_000),
    "import · files 40/40 · 61,200 records read · 61,000 stored (60,950 new) · 6,120 records/s · done in 10s",
  );

  let clock = 1000;
  const written: string[] = [];
  const line = showImportProgress({
    terminal: { write: (t: string) => written.push(t) },
    now: () => clock,
    everyMs: 250,
  });
  line.update(p); // the first state is drawn
  clock += 100;
  line.update({ ...p, read: 61_300 }); // too soon: not drawn
  clock += 200;
  line.update({ ...p, read: 61_400 });
  assert.equal(written.length, 2);
  assert.ok(written.every((w) => w.startsWith("\r\x1b[2K") && !w.endsWith("\n")));
  assert.match(written[1] ?? "", /61,400 records read/);
  line.end(); // stopped before the end (a signal): the line is ended so that what follows starts on its own
  assert.equal(written.at(-1), "\n");
  line.end();
  assert.equal(written.length, 3, "ended once");

  const done: string[] = [];
  const finished = showImportProgress({ terminal: { write: (t: string) => done.push(t) }, now: () => clock });
  finished.update({ ...p, finished: true });
  finished.end();
  assert.equal(done.length, 1);
  assert.ok(done[0]?.endsWith("done in 0s\n"), done[0]);
});

test("`import` with PROGRESS=on redraws the line on stderr, the summary on stdout; PROGRESS=off and a pipe show none", async () => {
  const db = await bed.fresh();
  const files = [await bed.tmpFile("cli-1.json", page("c1", 30)), await bed.tmpFile("cli-2.json", page("c2", 30))];
  const env = (progress?: string) => ({
    PATH: process.env.PATH ?? "",
    DATABASE_URL: db.url,
    LOG_LEVEL: "warn",
    ...(progress ? { PROGRESS: progress } : {}),
  });

  const on = await runCli(["import", "--tenant", TENANT, "--batch-size", "10", ...files], env("on"));
  assert.equal(on.code, 0, on.stderr);
  const lines = redraws(on.stderr);
  assert.ok(lines.length >= 2, `a first and a final line: ${JSON.stringify(on.stderr)}`);
  assert.match(lines[0] ?? "", /^import · files 0\/2 · 0 records read · 0 stored \(0 new\) · .*cli-1\.json$/);
  assert.equal(
    (lines.at(-1) ?? "").replace(/ · [\d,]+ records\/s · done in .*$/, ""),
    "import · files 2/2 · 60 records read · 60 stored (60 new)",
  );
  assert.ok(on.stderr.endsWith("\n"), "the final line is ended");
  assert.match(on.stdout, /tenant t-progress: 2 file\(s\), read 60, inserted 60/);
  assert.ok(!on.stdout.includes("import · "), "stdout holds the summary only");

  // Again with PROGRESS=off, and with the default (auto) on a pipe: not a terminal, no line; the same summary.
  for (const progress of ["off", undefined]) {
    const quiet = await runCli(["import", "--tenant", TENANT, ...files], env(progress));
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.equal(redraws(quiet.stderr).length, 0, `PROGRESS=${progress ?? "auto"}: ${quiet.stderr}`);
    assert.ok(!quiet.stderr.includes("\x1b[2K"));
    assert.match(quiet.stdout, /read 60, inserted 0, updated 0, unchanged 60/);
  }
});
