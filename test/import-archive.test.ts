// `import` never replaces stored content unless asked (insert-only by default, `--update` to replace), stores each
// event from its text (numbers exact), and reads Azure Monitor diagnostic-settings archives (records and folder trees).

import assert from "node:assert/strict";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { PassThrough } from "node:stream";
import { describe, it } from "node:test";

import { EXIT } from "../src/errors.ts";
import { importCommand } from "../src/io/commands.ts";
import { importFiles } from "../src/io/import.ts";
import { startSimulator } from "../src/simulator/server.ts";
import { withTransaction } from "../src/store/db.ts";
import { ensureMonths } from "../src/store/partitions.ts";
import { upsertSignIns } from "../src/store/signins.ts";
import { silentLog, type TestDatabase } from "./helpers/db.ts";
import { importBed } from "./helpers/import.ts";
import { ingestHarness } from "./helpers/ingest.ts";

const TENANT = "00000000-0000-4000-8000-0000000000aa";
const NOW = new Date("2026-11-28T12:00:00Z");

const { dir, fresh, deps, tmpFile } = importBed(TENANT, NOW);

/** `import` as the CLI runs it: its exit code and what it printed. */
async function runImport(db: TestDatabase, argv: string[]): Promise<{ code: number; text: string }> {
  const out = new PassThrough();
  let text = "";
  out.on("data", (c: Buffer) => (text += c.toString()));
  const code = await importCommand(argv, { pool: db.pool, log: silentLog, tenants: [TENANT], out, now: () => NOW });
  return { code, text };
}

interface Row {
  id: string;
  stream: string;
  revision: number;
  xmin: string;
  raw_text: string;
  raw: Record<string, unknown>;
}

async function signIns(db: TestDatabase): Promise<Row[]> {
  const r = await db.pool.query<Row>(
    "select id, stream, revision, xmin::text as xmin, raw::text as raw_text, raw from sign_ins order by id",
  );
  return r.rows;
}

// A beta interactive sign-in (the richer copy) and the same sign-in as v1.0 returns it (no authenticationDetails,
// no signInEventTypes). Its longitude has more digits than a JavaScript number keeps.
const BETA = `{"id":"s-1","createdDateTime":"2026-01-01T00:10:00Z","userPrincipalName":"a@contoso.com","ipAddress":"203.0.113.7","isInteractive":true,"signInEventTypes":["interactiveUser"],"authenticationDetails":[{"authenticationMethod":"Password","succeeded":true}],"status":{"errorCode":0},"location":{"city":"Atlanta","countryOrRegion":"US","geoCoordinates":{"latitude":33.749,"longitude":-84.445358276367188}}}`;
const V1 = `{"id":"s-1","createdDateTime":"2026-01-01T00:10:00Z","userPrincipalName":"a@contoso.com","ipAddress":"203.0.113.7","isInteractive":true,"status":{"errorCode":0},"location":{"city":"Atlanta","countryOrRegion":"US","geoCoordinates":{"latitude":33.749,"longitude":-84.445358276367188}}}`;
const OTHER = `{"id":"s-2","createdDateTime":"2026-01-01T00:11:00Z","userPrincipalName":"b@contoso.com","isInteractive":true,"status":{"errorCode":50126}}`;
const AUDIT = `{"id":"a-1","activityDateTime":"2026-01-01T00:12:00Z","category":"UserManagement","activityDisplayName":"Add user","result":"success"}`;

describe("import is insert-only unless --update", () => {
  it("stores numbers exactly, and re-importing the same file changes nothing", async () => {
    const db = await fresh();
    const file = await tmpFile("beta.jsonl", `${BETA}\n${OTHER}\n${AUDIT}\n`);
    const first = await importFiles([file], deps(db));
    assert.deepEqual([first.totals.inserted, first.totals.updated, first.totals.unchanged], [3, 0, 0]);
    const before = await signIns(db);
    assert.match(before[0]?.raw_text ?? "", /"longitude": -84\.445358276367188\b/);
    const audits = await db.pool.query<{ xmin: string }>("select xmin::text as xmin from directory_audits");

    const again = await importFiles([file], deps(db, { now: () => new Date(NOW.getTime() + 3_600_000) }));
    assert.deepEqual([again.totals.inserted, again.totals.updated, again.totals.unchanged], [0, 0, 3]);
    assert.deepEqual(await signIns(db), before, "xmin, revision and raw unchanged");
    const auditsAgain = await db.pool.query<{ xmin: string }>("select xmin::text as xmin from directory_audits");
    assert.deepEqual(auditsAgain.rows, audits.rows);
  });

  it("an older v1.0 copy imported after the beta one (or after the daemon stored it) leaves it as it is", async () => {
    const db = await fresh();
    // The daemon stored the beta copy (same statement as the reader's page).
    await ensureMonths(db.pool, [new Date("2026-01-01T00:00:00Z")]);
    await withTransaction(db.pool, (c) =>
      upsertSignIns(c, TENANT, "interactiveUser", { text: `[${BETA}]`, skip: [], count: 1 }, NOW, "beta"),
    );
    const stored = await signIns(db);
    const summary = await importFiles([await tmpFile("v1.json", `{"value":[${V1}]}`)], deps(db));
    assert.deepEqual([summary.totals.inserted, summary.totals.updated, summary.totals.unchanged], [0, 0, 1]);
    const after = await signIns(db);
    assert.deepEqual(after, stored);
    assert.ok(Array.isArray(after[0]?.raw.authenticationDetails), "authenticationDetails kept");
    const version = await db.pool.query<{ api_version: string }>("select api_version from sign_ins");
    assert.equal(version.rows[0]?.api_version, "beta");
  });

  it("--update lets a changed copy replace the stored one, and only a changed one", async () => {
    const db = await fresh();
    await importFiles([await tmpFile("first.jsonl", `${BETA}\n${OTHER}\n`)], deps(db));
    const changed = BETA.replace(`"errorCode":0`, `"errorCode":50140`);
    const file = await tmpFile("changed.jsonl", `${changed}\n${OTHER}\n`);
    const { code, text } = await runImport(db, ["--update", file]);
    assert.equal(code, EXIT.ok);
    assert.match(text, /inserted 0, updated 1, unchanged 1, rejected 0/);
    const [s1, s2] = await signIns(db);
    assert.equal(s1?.revision, 2);
    assert.equal((s1?.raw.status as { errorCode: number }).errorCode, 50140);
    assert.match(s1?.raw_text ?? "", /-84\.445358276367188\b/);
    assert.equal(s2?.revision, 1);
  });
});

const ARCHIVE = path.join(import.meta.dirname, "fixtures", "azure-monitor");

async function streams(db: TestDatabase): Promise<Array<[string, string]>> {
  const r = await db.pool.query<{ id: string; stream: string }>(
    "select id, stream from sign_ins union all select id, stream from directory_audits order by id",
  );
  return r.rows.map((row) => [row.id, row.stream]);
}

describe("import of Azure Monitor diagnostic-settings archives", () => {
  it("puts each category's properties in its stream, verbatim, and skips other categories", async () => {
    const db = await fresh();
    const { code, text } = await runImport(db, [path.join(ARCHIVE, "records.jsonl")]);
    assert.equal(code, EXIT.ok);
    assert.match(text, /Azure Monitor diagnostic-settings records, JSON lines \(8 events\)/);
    assert.match(
      text,
      /read 8, inserted 6, updated 0, unchanged 0, rejected 0, skipped 2 \(ProvisioningLogs: 1, MicrosoftServicePrincipalSignInLogs: 1\)/,
    );
    assert.deepEqual(await streams(db), [
      ["Directory_am-audit-1", "directoryAudits"],
      ["am-int-1", "interactiveUser"],
      ["am-int-2", "interactiveUser"],
      ["am-mi-1", "managedIdentity"],
      ["am-nonint-1", "nonInteractiveUser"],
      ["am-sp-1", "servicePrincipal"],
    ]);
    // raw is the record's properties, as in the file: its numbers exact, nothing of the envelope added.
    const lines = (await readFile(path.join(ARCHIVE, "records.jsonl"), "utf8")).trim().split("\n");
    const first = JSON.parse(lines[0] as string) as { properties: Record<string, unknown> };
    const row = await db.pool.query<{ raw: Record<string, unknown>; raw_text: string; typed: string }>(
      "select raw, raw::text as raw_text, created_date_time::text as typed from sign_ins where id = 'am-int-1'",
    );
    assert.deepEqual(row.rows[0]?.raw, first.properties);
    assert.match(row.rows[0]?.raw_text ?? "", /"longitude": 78\.376632690429688\b/);
    // A sign-in without properties.createdDateTime is timed by the record's time, and marked.
    const timed = await db.pool.query<{ at: Date; raw: Record<string, unknown> }>(
      "select created_date_time as at, raw from sign_ins where id = 'am-int-2'",
    );
    assert.equal(timed.rows[0]?.at.toISOString(), "2026-01-01T00:11:31.273Z");
    assert.equal(timed.rows[0]?.raw.createdDateTime, "2026-01-01T00:11:31.2737420Z");
    assert.equal(timed.rows[0]?.raw["@signinIngest.source"], "azureMonitor");
    const audit = await db.pool.query<{ category: string; activity_display_name: string }>(
      "select category, activity_display_name from directory_audits",
    );
    assert.deepEqual(audit.rows, [{ category: "UserManagement", activity_display_name: "Update user" }]);
  });

  it("walks a storage account's folder tree, {records} objects appended and JSON lines, idempotently", async () => {
    const db = await fresh();
    const tree = path.join(ARCHIVE, "tree");
    const first = await importFiles([tree], deps(db));
    assert.equal(first.failed, 0);
    assert.equal(first.files.length, 6, "every PT1H.json under the tree");
    assert.ok(first.files.every((f) => f.file.endsWith(`${path.sep}PT1H.json`)));
    const signins = first.files.find((f) => f.file.includes(`insights-logs-signinlogs`) && f.file.includes("h=00"));
    assert.equal(signins?.container, `2 {"records": […]} objects`);
    assert.deepEqual([first.totals.read, first.totals.inserted, first.totals.rejected], [8, 8, 0]);
    assert.deepEqual(await streams(db), [
      ["Directory_tree-audit-1", "directoryAudits"],
      ["tree-int-1", "interactiveUser"],
      ["tree-int-2", "interactiveUser"],
      ["tree-int-3", "interactiveUser"],
      ["tree-int-4", "interactiveUser"],
      ["tree-mi-1", "managedIdentity"],
      ["tree-nonint-1", "nonInteractiveUser"],
      ["tree-sp-1", "servicePrincipal"],
    ]);
    const before = await signIns(db);
    const again = await importFiles([tree], deps(db));
    assert.deepEqual([again.totals.inserted, again.totals.updated, again.totals.unchanged], [0, 0, 8]);
    assert.deepEqual(await signIns(db), before, "nothing rewritten");
  });

  it("a directory without event files is reported, the other paths still imported", async () => {
    const db = await fresh();
    const empty = path.join(dir(), "no-events");
    await mkdir(path.join(empty, "y=2026"), { recursive: true });
    await writeFile(path.join(empty, "y=2026", "notes.txt"), "not an event file");
    const summary = await importFiles([empty, path.join(ARCHIVE, "records.jsonl")], deps(db));
    assert.equal(summary.failed, 1);
    assert.match(summary.files[0]?.error ?? "", /no \.json or \.jsonl file/);
    assert.equal(summary.totals.inserted, 6);
  });
});

/** The Azure Monitor category of each stream (the inverse of the import's mapping). */
const CATEGORY: Record<string, string> = {
  interactiveUser: "SignInLogs",
  nonInteractiveUser: "NonInteractiveUserSignInLogs",
  servicePrincipal: "ServicePrincipalSignInLogs",
  managedIdentity: "ManagedIdentitySignInLogs",
  directoryAudits: "AuditLogs",
};

/** Every stored row's key, xmin and revision: equal before and after means nothing was added or rewritten. */
async function rowVersions(db: TestDatabase): Promise<unknown[]> {
  const r = await db.pool.query(
    `select 'sign_ins' as t, tenant_id, id, xmin::text, revision from sign_ins
     union all select 'directory_audits', tenant_id, id, xmin::text, revision from directory_audits order by 1, 3`,
  );
  return r.rows;
}

describe("an Azure Monitor archive of events the daemon already polled from Graph", () => {
  it("adds no duplicates and rewrites nothing", async () => {
    const sim = await startSimulator({ seed: 5, users: 8, signInsPerUserPerDay: 12, historyDays: 1 });
    const db = await fresh();
    const h = ingestHarness(sim, db, { STREAMS: "interactiveUser,nonInteractiveUser,directoryAudits" });
    try {
      const outcomes = await h.ingester.runAll(new AbortController().signal);
      assert.ok(outcomes.every((o) => "result" in o && o.result !== undefined));
    } finally {
      await h.close();
      await sim.close();
    }
    const polled = await db.pool.query<{ stream: string; raw: Record<string, unknown>; time: string }>(
      `select stream, raw, 'createdDateTime' as time from sign_ins
       union all select stream, raw, 'activityDateTime' from directory_audits`,
    );
    const polledStreams = new Set(polled.rows.map((r) => r.stream));
    assert.deepEqual(polledStreams, new Set(["interactiveUser", "nonInteractiveUser", "directoryAudits"]));
    // The same events as diagnostic settings write them: an envelope, the time with an offset instead of Z.
    const records = polled.rows.map((r) => {
      const at = String(r.raw[r.time]).replace(/Z$/, "+00:00");
      return {
        time: r.raw[r.time],
        resourceId: `/tenants/${sim.tenantId}/providers/Microsoft.aadiam`,
        operationName: r.stream === "directoryAudits" ? r.raw.activityDisplayName : "Sign-in activity",
        category: CATEGORY[r.stream],
        tenantId: sim.tenantId,
        properties: { ...r.raw, [r.time]: at },
      };
    });
    const file = await tmpFile("PT1H.json", JSON.stringify({ records }));
    const before = await rowVersions(db);
    const summary = await importFiles([file], deps(db, { tenantId: sim.tenantId }));
    assert.deepEqual(
      [summary.totals.read, summary.totals.inserted, summary.totals.updated, summary.totals.unchanged],
      [records.length, 0, 0, records.length],
    );
    const after = await rowVersions(db);
    assert.deepEqual(after, before);
  });
});
