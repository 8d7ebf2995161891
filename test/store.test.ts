import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { pageEvents, type ValidEvent } from "../src/ingest/events.ts";
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
  const { valid, rejected, duplicates, events: page } = pageEvents(text, value);
  assert.equal(rejected.length, 1);
  assert.equal(duplicates, 1);
  assert.deepEqual(page.skip, [1, 2]);
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
