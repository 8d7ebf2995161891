// `import` never replaces stored content unless asked (insert-only by default, `--update` to replace), stores each
// event from its text (numbers exact), and reads Azure Monitor diagnostic-settings archives (records and folder trees).

import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { describe, it } from "node:test";

import { EXIT } from "../src/errors.ts";
import { importCommand } from "../src/io/commands.ts";
import { importFiles } from "../src/io/import.ts";
import { withTransaction } from "../src/store/db.ts";
import { ensureMonths } from "../src/store/partitions.ts";
import { upsertSignIns } from "../src/store/signins.ts";
import { silentLog, type TestDatabase } from "./helpers/db.ts";
import { importBed } from "./helpers/import.ts";

const TENANT = "00000000-0000-4000-8000-0000000000aa";
const NOW = new Date("2026-11-28T12:00:00Z");

const { fresh, deps, tmpFile } = importBed(TENANT, NOW);

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
    const out = new PassThrough();
    let text = "";
    out.on("data", (c: Buffer) => (text += c.toString()));
    const code = await importCommand(["--update", file], {
      pool: db.pool,
      log: silentLog,
      tenants: [TENANT],
      out,
      now: () => NOW,
    });
    assert.equal(code, EXIT.ok);
    assert.match(text, /inserted 0, updated 1, unchanged 1, rejected 0/);
    const [s1, s2] = await signIns(db);
    assert.equal(s1?.revision, 2);
    assert.equal((s1?.raw.status as { errorCode: number }).errorCode, 50140);
    assert.match(s1?.raw_text ?? "", /-84\.445358276367188\b/);
    assert.equal(s2?.revision, 1);
  });
});
