import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { isGraphDateTime, pageEvents, type ValidEvent } from "../src/events/classify.ts";
import { jsonbProblem, splitPage, utf8Text } from "../src/events/jsonb.ts";
import { readCheckpoint, writeCheckpoint } from "../src/store/checkpoints.ts";
import { isTemporaryDatabaseError } from "../src/errors.ts";
import { withTransaction } from "../src/store/db.ts";
import { ensurePartitions } from "../src/store/partitions.ts";
import { insertRejected, upsertSignIns } from "../src/store/signins.ts";
import { createTestDatabase, type TestDatabase } from "./helpers/db.ts";

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase();
  await ensurePartitions(db.pool, new Date("2026-10-01Z"), new Date("2026-11-30Z"));
});
after(() => db.drop());

const T = "tenant-a";
const event = (id: string, extra: Record<string, unknown> = {}): ValidEvent => {
  const raw = {
    id,
    createdDateTime: "2026-11-28T10:00:00.1234567Z",
    userPrincipalName: "ann@contoso.example",
    ...extra,
  };
  return { id, createdDateTime: raw.createdDateTime, raw };
};
const upsert = (events: ValidEvent[], at = new Date()) =>
  withTransaction(db.pool, (c) => upsertSignIns(c, T, "interactiveUser", events, at));

test("insert, then an identical re-run writes nothing, then a changed re-publish updates the row", async () => {
  const t1 = new Date("2026-11-28T10:05:00Z");
  assert.deepEqual(await upsert([event("e1"), event("e2")], t1), {
    inserted: 2,
    updated: 0,
    unchanged: 0,
    insertedCreatedAt: [new Date("2026-11-28T10:00:00.123Z"), new Date("2026-11-28T10:00:00.123Z")],
  });
  assert.deepEqual(await upsert([event("e1"), event("e2")]), {
    inserted: 0,
    updated: 0,
    unchanged: 2,
    insertedCreatedAt: [],
  });
  const t3 = new Date("2026-11-28T11:00:00Z");
  assert.deepEqual(await upsert([event("e1", { riskLevelDuringSignIn: "high" }), event("e2")], t3), {
    inserted: 0,
    updated: 1,
    unchanged: 1,
    insertedCreatedAt: [],
  });
  const row = (
    await db.pool.query(
      "select first_seen_at, last_changed_at, risk_level_during_sign_in, raw from sign_ins where tenant_id = $1 and id = 'e1'",
      [T],
    )
  ).rows[0];
  assert.equal(row.first_seen_at.toISOString(), t1.toISOString());
  assert.equal(row.last_changed_at.toISOString(), t3.toISOString());
  assert.equal(row.risk_level_during_sign_in, "high");
  assert.equal(row.raw.createdDateTime, "2026-11-28T10:00:00.1234567Z", "raw keeps the event as received");
});

test("a page is stored from its own text, without its rejected events and the earlier copy of a repeated id", async () => {
  const tenant = "tenant-page";
  const value = [
    { id: "p1", createdDateTime: "2026-11-28T10:00:00Z", v: 1 },
    { createdDateTime: "2026-11-28T10:00:00Z", v: "no id" },
    { id: "p2", createdDateTime: "2026-11-28T10:00:01.5Z", n: 1.5 },
    { id: "p1", createdDateTime: "2026-11-28T10:00:00Z", v: 2 },
  ];
  const text = JSON.stringify({ "@odata.context": "https://graph.example/$metadata#auditLogs/signIns", value });
  const { valid, rejected, duplicates, events: page } = pageEvents(splitPage(text).scan);
  assert.equal(rejected.length, 1);
  assert.equal(duplicates, 1);
  assert.deepEqual(page.skip, [true, true, false, false]);
  const result = await withTransaction(db.pool, (c) => upsertSignIns(c, tenant, "interactiveUser", page, new Date()));
  assert.equal(result.inserted, 2);
  const rows = (
    await db.pool.query("select id, raw from sign_ins where tenant_id = $1 order by id", [tenant])
  ).rows.map((r: { id: string; raw: unknown }) => [r.id, r.raw]);
  assert.deepEqual(rows, [
    ["p1", value[3]],
    ["p2", value[2]],
  ]);
  // The same events given parsed (import, older releases) are the same rows: nothing changes.
  const again = await withTransaction(db.pool, (c) =>
    upsertSignIns(
      c,
      tenant,
      "interactiveUser",
      valid.map(({ index, id, createdDateTime }) => ({ id, createdDateTime, raw: value[index] as ValidEvent["raw"] })),
      new Date(),
    ),
  );
  assert.deepEqual([again.inserted, again.updated, again.unchanged], [0, 0, 2]);
});

test("typed columns are generated from raw and tolerate type drift", async () => {
  await upsert([
    event("typed", {
      ipAddress: "203.0.113.9",
      clientAppUsed: "IMAP",
      isInteractive: true,
      status: { errorCode: 50126, failureReason: "Invalid username or password." },
      location: { city: "Leeds", countryOrRegion: "GB", geoCoordinates: { latitude: 53.8, longitude: -1.55 } },
      deviceDetail: { operatingSystem: "Windows 10", browser: "Edge 122.0.0", isCompliant: true, isManaged: false },
    }),
    event("drift", {
      ipAddress: "10.1.2.XXX",
      clientAppUsed: { unexpected: "object" },
      isInteractive: "false",
      status: { errorCode: "0" },
      location: "Leeds",
      deviceDetail: null,
    }),
  ]);
  const rows = (
    await db.pool.query(
      `select id, host(ip) as ip, ip_address, client_app_used, is_legacy_auth, is_interactive, status_error_code,
              status_failure_reason, location_city, location_country_or_region, location_latitude, device_browser,
              device_is_compliant, device_is_managed, sign_in_event_type, created_date_time
       from sign_ins where id in ('typed', 'drift') order by id desc`,
    )
  ).rows;
  assert.deepEqual(rows[0], {
    id: "typed",
    ip: "203.0.113.9",
    ip_address: "203.0.113.9",
    client_app_used: "IMAP",
    is_legacy_auth: true,
    is_interactive: true,
    status_error_code: 50126,
    status_failure_reason: "Invalid username or password.",
    location_city: "Leeds",
    location_country_or_region: "GB",
    location_latitude: 53.8,
    device_browser: "Edge 122.0.0",
    device_is_compliant: true,
    device_is_managed: false,
    sign_in_event_type: "interactiveUser",
    created_date_time: new Date("2026-11-28T10:00:00.123Z"),
  });
  assert.equal(rows[1].ip, null, "a redacted address is kept as text but has no inet");
  assert.equal(rows[1].ip_address, "10.1.2.XXX");
  assert.equal(rows[1].client_app_used, null);
  assert.equal(rows[1].is_interactive, false);
  assert.equal(rows[1].status_error_code, 0);
  assert.equal(rows[1].location_city, null);
});

test("rows land in their monthly partition; a month without one fails the statement as temporary, not silently", async () => {
  const stray = { id: "stray", createdDateTime: "2027-03-01T00:00:00Z" };
  const error = await upsert([{ id: "stray", createdDateTime: stray.createdDateTime, raw: stray }]).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.equal((error as { code?: string }).code, "23514", String(error));
  assert.equal(isTemporaryDatabaseError(error), true, "the next attempt creates the month first");
  await ensurePartitions(db.pool, new Date("2027-03-01Z"), new Date("2027-03-01Z"));
  await upsert([{ id: "stray", createdDateTime: stray.createdDateTime, raw: stray }]);
  const where = async () =>
    (await db.pool.query("select tableoid::regclass::text as part from sign_ins where id = 'stray'")).rows[0]?.part;
  assert.equal(await where(), "sign_ins_2027_03");
  assert.equal(
    (await db.pool.query("select tableoid::regclass::text as p from sign_ins where id = 'e1'")).rows[0]?.p,
    "sign_ins_2026_11",
  );
});

test("rejected events are kept with reason and text, counted when seen again", async () => {
  const at = new Date();
  const rejected = [{ reason: "missing or empty id", rawText: '{"createdDateTime":"2026-11-28T10:00:00Z"}' }];
  await withTransaction(db.pool, (c) => insertRejected(c, T, "interactiveUser", rejected, at));
  await withTransaction(db.pool, (c) => insertRejected(c, T, "interactiveUser", rejected, at));
  const rows = (await db.pool.query("select reason, raw_text, times_seen from rejected_events")).rows;
  assert.deepEqual(rows, [{ reason: "missing or empty id", raw_text: rejected[0]?.rawText, times_seen: 2 }]);
});

test("a checkpoint never moves backwards", async () => {
  const at = new Date();
  await withTransaction(db.pool, (c) => writeCheckpoint(c, T, "interactiveUser", new Date("2026-11-28T10:00:00Z"), at));
  await withTransaction(db.pool, (c) => writeCheckpoint(c, T, "interactiveUser", new Date("2026-11-28T09:00:00Z"), at));
  assert.equal((await readCheckpoint(db.pool, T, "interactiveUser"))?.toISOString(), "2026-11-28T10:00:00.000Z");
  assert.equal(await readCheckpoint(db.pool, "other-tenant", "interactiveUser"), undefined);
});

test("the checks agree with PostgreSQL: a number or timestamp is accepted by both or refused by the check", async () => {
  const numbers = [
    "1e999999",
    "-1e999999",
    "1e131071",
    "9e131071",
    "1e131072",
    "1e-16383",
    "1e-16384",
    "0e999999",
    "0e-16384",
    "0e1073741823",
    "0e1073741824",
    "0e-9999999999",
    "0.1e-16382",
    "0.1e-16383",
    "1.5e-16383",
    "100e-16385",
    "0.0000001e131078",
    "0.0000001e131079",
    "1e00000000000000000000000000000001",
    "0e-00000000000000000016383",
    `1${"0".repeat(131071)}`,
    `1${"0".repeat(131072)}`,
    `0.${"0".repeat(16382)}1`,
    `0.${"0".repeat(16383)}1`,
    "1E5",
  ];
  // Refused by the check; PostgreSQL 15 refuses it too, 18 accepts it (the exponent INT_MAX / 2 itself).
  const versionDependent = new Set(["0e1073741823"]);
  for (const n of numbers) {
    const text = `{"a":${n}}`;
    const pgAccepts = await db.pool.query("select $1::jsonb", [text]).then(
      () => true,
      (e: { code: string }) => (assert.equal(e.code, "22003", n), false),
    );
    if (versionDependent.has(n)) {
      assert.ok(jsonbProblem(text), n);
      continue;
    }
    assert.equal(jsonbProblem(text) === undefined, pgAccepts, n.length > 40 ? `${n.slice(0, 20)}… (${n.length})` : n);
  }
  for (const [text, code] of [
    ['{"a":"\\ud800"}', "22P02"],
    ['{"a":"\\udc00x"}', "22P02"],
    ['{"\\ud800\\ud800":1}', "22P02"],
    ['{"a":"\\u0000"}', "22P05"],
    [`{"a":${"[".repeat(20_000)}${"]".repeat(20_000)}}`, "54001"],
  ] as const) {
    assert.ok(jsonbProblem(text), text.slice(0, 30));
    await assert.rejects(db.pool.query("select $1::jsonb", [text]), { code });
  }
  assert.equal(jsonbProblem('{"a":"\\ud83d\\ude00","b":"\\\\ud800"}'), undefined, "a pair, and an escaped backslash");
  await db.pool.query("select $1::jsonb", ['{"a":"\\ud83d\\ude00","b":"\\\\ud800"}']);

  // Timestamps the check accepts mean the same instant to PostgreSQL; the ones it refuses PostgreSQL refuses too, or
  // reads differently from JavaScript (24:00 and second 60 roll over in PostgreSQL; JavaScript refuses second 60).
  for (const t of [
    "2024-02-29T23:59:59Z",
    "2026-11-28T12:00:00.5+14:00",
    "2026-11-28T12:00:00-12:00",
    "2026-11-28T12:00:00+05:45",
    "2026-11-28T12:00:00.1234567Z",
  ]) {
    assert.ok(isGraphDateTime(t), t);
    const { rows } = await db.pool.query<{ t: Date }>("select $1::timestamptz as t", [t]);
    assert.ok(Math.abs((rows[0]?.t.getTime() ?? 0) - Date.parse(t.replace(/(\.\d{3})\d+/, "$1"))) <= 1, t);
  }
  for (const t of [
    "2026-02-30T10:00:00Z",
    "2025-02-29T00:00:00Z",
    "2026-01-01T10:00:00+23:59",
    "2026-01-01T10:00:00+16:00",
    "2026-01-01T10:60:00Z",
    "2026-01-01T10:00:00+00:60",
  ]) {
    assert.ok(!isGraphDateTime(t), t);
    await assert.rejects(db.pool.query("select $1::timestamptz", [t]), /out of range/, t);
  }
  for (const t of ["2026-01-01T24:00:00Z", "2026-01-01T23:59:60Z"]) {
    assert.ok(!isGraphDateTime(t), t);
  }
});

test("typed text is cut to 400 bytes on a character boundary; raw keeps the whole value", async () => {
  const cases = {
    ascii: "a".repeat(3000),
    accented: "é".repeat(3000),
    emoji: `a${"😀".repeat(1000)}`,
  };
  await upsert(
    Object.entries(cases).map(([id, text]) =>
      event(`cut-${id}`, { userPrincipalName: text, location: { countryOrRegion: text, city: text } }),
    ),
  );
  const rows = (
    await db.pool.query<{ id: string; upn: string; country: string; raw: string }>(
      `select id, user_principal_name as upn, location_country_or_region as country, raw ->> 'userPrincipalName' as raw
       from sign_ins where id like 'cut-%'`,
    )
  ).rows;
  assert.equal(rows.length, 3);
  for (const row of rows) {
    const whole = cases[row.id.slice(4) as keyof typeof cases];
    assert.equal(row.raw, whole);
    assert.ok(whole.startsWith(row.upn) && row.upn.isWellFormed(), row.id);
    assert.ok(
      Buffer.byteLength(row.upn) <= 400 && Buffer.byteLength(row.upn) > 396,
      `${row.id}: ${Buffer.byteLength(row.upn)}`,
    );
    assert.equal(row.country, row.upn);
  }
  // Short values are untouched.
  const short = await db.pool.query("select user_principal_name from sign_ins where id = 'e1'");
  assert.equal(short.rows[0]?.user_principal_name, "ann@contoso.example");
});

test("a page of names in any script is sent as its bytes (jsonb binary) and stored exactly as text would be", async () => {
  const tenant = "tenant-scripts";
  const names = ["山田 太郎", "Иван Петров", "김민준", "Σοφία", "שרה כהן", "Zoë Brontë", "🙂 team"];
  const value = names.map((n, i) => ({
    id: `s${i}`,
    createdDateTime: "2026-11-28T10:00:00Z",
    userDisplayName: n,
    userPrincipalName: `u${i}@contoso.example`,
    location: { city: "東京", countryOrRegion: "JP" },
  }));
  const text = JSON.stringify({ value });
  const { events } = pageEvents(splitPage(text).scan);
  assert.ok(Buffer.isBuffer(events.text));
  const stored = await withTransaction(db.pool, (c) => upsertSignIns(c, tenant, "interactiveUser", events, new Date()));
  assert.equal(stored.inserted, names.length);
  const rows = await db.pool.query(
    "select raw, user_display_name, location_city from sign_ins where tenant_id = $1 order by id",
    [tenant],
  );
  assert.deepEqual(
    rows.rows.map((r: { raw: unknown }) => r.raw),
    value,
  );
  assert.deepEqual(
    rows.rows.map((r: { user_display_name: string; location_city: string }) => [r.user_display_name, r.location_city]),
    names.map((n) => [n, "東京"]),
  );
  // The same events as text (import, parsed events) are the same rows: nothing changes.
  const again = await withTransaction(db.pool, (c) =>
    upsertSignIns(c, tenant, "interactiveUser", { text, skip: [], count: names.length }, new Date()),
  );
  assert.deepEqual([again.inserted, again.updated, again.unchanged], [0, 0, names.length]);
});

test("a page of 200,000 rejected items and 3 events is stored in linear time (the skip mask), nothing lost", async () => {
  const tenant = "tenant-huge";
  const good = ["h1", "h2", "h3"].map((id) => ({ id, createdDateTime: "2026-11-28T10:00:00Z" }));
  const junk = Array.from({ length: 200_000 }, (_, i) => ({ n: i }));
  const value = [good[0], ...junk.slice(0, 100_000), good[1], ...junk.slice(100_000), good[2]];
  const text = JSON.stringify({ value });
  const { rejected, events } = pageEvents(splitPage(text).scan);
  assert.equal(rejected.length, 200_000);
  assert.equal(utf8Text(events.text as Buffer), text, "sent as received, the rejected items masked");
  const result = await withTransaction(db.pool, async (c) => {
    const r = await upsertSignIns(c, tenant, "interactiveUser", events, new Date());
    await insertRejected(c, tenant, "interactiveUser", rejected, new Date());
    return r;
  });
  assert.equal(result.inserted, 3);
  const stored = await db.pool.query("select id from sign_ins where tenant_id = $1 order by id", [tenant]);
  assert.deepEqual(
    stored.rows.map((r: { id: string }) => r.id),
    ["h1", "h2", "h3"],
  );
  const count = await db.pool.query("select count(*)::int as n from rejected_events where tenant_id = $1", [tenant]);
  assert.equal(count.rows[0]?.n, 200_000);
});
