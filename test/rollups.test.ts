// The rollups (migrations/0014_rollups.sql) must always equal a direct aggregate over sign_ins (and its CA child
// rows): after inserts, after changed re-publishes (UPDATE: old contribution out, new one in), and after retention
// drops whole months.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { withTransaction } from "../src/store/db.ts";
import { dropExpiredPartitions, ensureUpcomingPartitions } from "../src/store/partitions.ts";
import { createTestDatabase, type TestDatabase } from "./helpers/db.ts";
import { loadSimulatedSignIns, upsertPages } from "./helpers/views-fixture.ts";

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase();
});
after(() => db.drop());

const DAY = 86_400_000;

const HOURLY_DIRECT = `
select signin_hour(created_date_time) as hour, tenant_id, sign_in_event_type, location_country_or_region,
  location_state, location_city, location_latitude, location_longitude,
  count(*) as sign_ins, count(*) filter (where status_error_code <> 0) as failures
from sign_ins group by 1, 2, 3, 4, 5, 6, 7, 8`;
const HOURLY_ROLLUP = `
select hour, tenant_id, sign_in_event_type, country_or_region, state, city, latitude, longitude, sign_ins, failures
from sign_in_rollup_hourly`;
const CA_DIRECT = `
select signin_day(created_date_time) as day, tenant_id, policy_id, result, policy_name, count(*) as sign_ins
from sign_in_ca_policies group by 1, 2, 3, 4, 5`;
const CA_ROLLUP = `select day, tenant_id, policy_id, result, policy_name, sign_ins from sign_in_ca_rollup_daily`;

/** Rows in one but not the other (multiset difference both ways; EXCEPT compares nulls as equal). */
async function assertRollupsMatch(label: string): Promise<void> {
  for (const [name, direct, rollup] of [
    ["hourly", HOURLY_DIRECT, HOURLY_ROLLUP],
    ["ca", CA_DIRECT, CA_ROLLUP],
  ] as const) {
    const { rows } = await db.pool.query(
      `select 'missing' as side, * from ((${direct}) except all (${rollup})) a
       union all
       select 'extra' as side, * from ((${rollup}) except all (${direct})) b
       limit 5`,
    );
    assert.deepEqual(rows, [], `${label}: ${name} rollup disagrees with a direct aggregate`);
  }
  const zero = await db.pool.query(
    `select (select count(*) from sign_in_rollup_hourly where sign_ins <= 0)::int as h,
            (select count(*) from sign_in_ca_rollup_daily where sign_ins <= 0)::int as c`,
  );
  assert.deepEqual(zero.rows[0], { h: 0, c: 0 }, `${label}: empty groups are deleted`);
}

const event = (id: string, createdDateTime: string, patch: Record<string, unknown> = {}) => ({
  id,
  createdDateTime,
  userPrincipalName: "ann@contoso.example",
  signInEventTypes: ["interactiveUser"],
  status: { errorCode: 0 },
  location: { city: "London", countryOrRegion: "GB", geoCoordinates: { latitude: 51.5, longitude: -0.12 } },
  appliedConditionalAccessPolicies: [
    { id: "p1", displayName: "MFA", result: "success" },
    { id: "p2", displayName: "Block legacy", result: "notApplied" },
  ],
  ...patch,
});

test("rollups equal a direct aggregate after the simulator's inserts and re-publications", async () => {
  const fx = await loadSimulatedSignIns(db.pool, { days: 3, users: 100 });
  assert.ok(fx.republished > 5, `republished: ${fx.republished}`);
  const { rows } = await db.pool.query("select count(*)::int as n from sign_in_rollup_hourly");
  assert.ok(rows[0].n > 100);
  await assertRollupsMatch("simulator");
});

test("a changed re-publish moves its contribution (place, failure, CA result) and empties groups", async () => {
  const tenant = "t-rollup-update";
  const at = "2026-03-05T10:15:00Z";
  await upsertPages(db.pool, tenant, [event("u1", at), event("u2", at)], new Date());
  await assertRollupsMatch("before re-publish");
  // u1 is re-published from Paris, failed, with p1 now failing and a null-keyed policy; u2 loses its city.
  await upsertPages(
    db.pool,
    tenant,
    [
      event("u1", at, {
        status: { errorCode: 50126, failureReason: "Invalid username or password" },
        location: { city: "Paris", countryOrRegion: "FR", geoCoordinates: { latitude: 48.85, longitude: 2.35 } },
        appliedConditionalAccessPolicies: [{ id: "p1", displayName: "MFA", result: "failure" }, { result: "success" }],
      }),
      event("u2", at, { location: { countryOrRegion: "GB" } }),
    ],
    new Date(),
  );
  await assertRollupsMatch("after re-publish");
  const places = await db.pool.query(
    `select city, sign_ins::int, failures::int from v_sign_ins_by_location_hourly where tenant_id = $1 order by city`,
    [tenant],
  );
  assert.deepEqual(places.rows, [
    { city: "Paris", sign_ins: 1, failures: 1 },
    { city: null, sign_ins: 1, failures: 0 },
  ]);
  const ca = await db.pool.query(
    `select policy_id, result, sign_ins::int from v_ca_policy_outcomes_daily where tenant_id = $1
     order by policy_id nulls last, result`,
    [tenant],
  );
  assert.deepEqual(ca.rows, [
    { policy_id: "p1", result: "failure", sign_ins: 1 },
    { policy_id: "p1", result: "success", sign_ins: 1 },
    { policy_id: "p2", result: "notApplied", sign_ins: 1 },
    { policy_id: null, result: "success", sign_ins: 1 },
  ]);
  // An identical re-publish writes nothing (the upsert's WHERE fails), so nothing changes.
  await upsertPages(db.pool, tenant, [event("u2", at, { location: { countryOrRegion: "GB" } })], new Date());
  await assertRollupsMatch("after identical re-publish");
});

test("dropping expired months deletes their rollup rows and keeps the rest", async () => {
  const tenant = "t-rollup-retention";
  await withTransaction(db.pool, (c) => ensureUpcomingPartitions(c, new Date("2033-01-01T00:00:00Z"), 3));
  await upsertPages(
    db.pool,
    tenant,
    ["2033-01-10", "2033-01-31T23", "2033-02-01T00", "2033-03-20"].map((d, i) =>
      event(`r${i}`, d.length === 10 ? `${d}T08:00:00Z` : `${d}:30:00Z`),
    ),
    new Date(),
  );
  await assertRollupsMatch("before drop");
  const count = async () =>
    (
      await db.pool.query(
        `select (select coalesce(sum(sign_ins), 0) from sign_in_rollup_hourly where tenant_id = $1)::int as h,
                (select coalesce(sum(sign_ins), 0) from sign_in_ca_rollup_daily where tenant_id = $1)::int as c`,
        [tenant],
      )
    ).rows[0];
  assert.deepEqual(await count(), { h: 4, c: 8 });
  // 40 days before 2033-03-15 is 2033-02-03: January (and every older test month) goes, February stays.
  const dropped = await withTransaction(db.pool, (c) =>
    dropExpiredPartitions(c, 40 * DAY, new Date("2033-03-15T00:00:00Z")),
  );
  assert.ok(dropped.some((d) => d.name === "sign_ins_2033_01"));
  assert.ok(!dropped.some((d) => d.name === "sign_ins_2033_02"));
  assert.deepEqual(await count(), { h: 2, c: 4 });
  await assertRollupsMatch("after drop");
  const { rows } = await db.pool.query(
    `select (select count(*) from sign_in_rollup_hourly where hour < '2033-02-01Z')::int as h,
            (select count(*) from sign_in_ca_rollup_daily where day < '2033-02-01Z')::int as c`,
  );
  assert.deepEqual(rows[0], { h: 0, c: 0 });
});
