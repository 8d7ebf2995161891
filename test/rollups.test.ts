// The rollups (migrations/0014_rollups.sql, 0015_fast_views.sql) must always equal a direct aggregate over sign_ins
// (and its child rows), and the kept impossible-travel candidates the query the view used to run: after inserts,
// after changed re-publishes (UPDATE: old contribution out, new one in), out of order, with concurrent writers, and
// after retention drops whole months.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { runner } from "node-pg-migrate";

import { withTransaction } from "../src/store/db.ts";
import { migrate, MIGRATIONS_DIR } from "../src/store/migrate.ts";
import { upsertSignIns } from "../src/store/signins.ts";
import { dropExpiredPartitions, ensureUpcomingPartitions } from "../src/store/partitions.ts";
import { createTestDatabase, silentLog, type TestDatabase } from "./helpers/db.ts";
import { loadSimulatedSignIns, type PageWriter, upsertPages } from "./helpers/views-fixture.ts";

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase();
});
after(() => db.drop());

const DAY = 86_400_000;

const HOURLY_DIRECT = `
select signin_hour(created_date_time) as hour, tenant_id, sign_in_event_type, location_country_or_region,
  location_state, location_city, location_latitude, location_longitude,
  count(*) as sign_ins, count(*) filter (where is_failure) as failures,
  count(*) filter (where outcome = 'interrupt') as interrupts
from sign_ins group by 1, 2, 3, 4, 5, 6, 7, 8`;
const HOURLY_ROLLUP = `
select hour, tenant_id, sign_in_event_type, country_or_region, state, city, latitude, longitude, sign_ins, failures,
  interrupts
from sign_in_rollup_hourly`;
// From raw: since 0025/0028 sign_in_ca_policies has no row for a policy that did not apply, and the rollup still
// counts them.
const CA_DIRECT = `
select signin_day(s.created_date_time) as day, s.tenant_id, signin_text(p.v -> 'id') as policy_id,
  signin_text(p.v -> 'result') as result, signin_text(p.v -> 'displayName') as policy_name, count(*) as sign_ins
from sign_ins s cross join lateral jsonb_array_elements(signin_array(s.raw -> 'appliedConditionalAccessPolicies')) p(v)
group by 1, 2, 3, 4, 5`;
const CA_ROLLUP = `select day, tenant_id, policy_id, result, policy_name, sign_ins from sign_in_ca_rollup_daily`;

const MFA_DIRECT = `
select signin_day(n.created_date_time) as day, n.tenant_id, s.authentication_method, s.succeeded, s.step_result_detail,
  count(*) as steps
from sign_ins n cross join lateral signin_mfa_steps(n.raw) s group by 1, 2, 3, 4, 5`;
const MFA_ROLLUP = `select day, tenant_id, authentication_method, succeeded, step_result_detail, steps
from sign_in_mfa_rollup_daily`;
// The query v_impossible_travel_candidates ran before 0015 (the oracle for the kept table).
const TRAVEL_DIRECT = `
select b.tenant_id, b.user_principal_name, b.id, b.created_date_time, a.id as previous_id,
  a.created_date_time as previous_created_date_time, a.location_country_or_region as previous_country_or_region,
  a.location_city as previous_city, a.ip_address as previous_ip_address,
  b.location_country_or_region as country_or_region, b.location_city as city, b.ip_address,
  round(a.distance_km::numeric, 1) as distance_km,
  round((extract(epoch from b.created_date_time - a.created_date_time) / 60)::numeric, 1) as minutes_between,
  round((a.distance_km / greatest(extract(epoch from b.created_date_time - a.created_date_time), 60) * 3600)::numeric, 0)
    as speed_kmh
from sign_ins b
cross join lateral (
  select p.id, p.created_date_time, p.location_country_or_region, p.location_city, p.ip_address,
    signin_distance_km(p.location_latitude, p.location_longitude, b.location_latitude, b.location_longitude) as distance_km
  from sign_ins p
  where p.tenant_id = b.tenant_id and p.user_principal_name = b.user_principal_name
    and p.created_date_time < b.created_date_time and p.created_date_time > b.created_date_time - interval '24 hours'
    and p.is_interactive and p.status_error_code = 0 and p.location_latitude is not null and p.location_longitude is not null
  order by p.created_date_time desc
  limit 1
) a
where b.is_interactive and b.status_error_code = 0 and b.location_latitude is not null and b.location_longitude is not null
  and a.distance_km > 500
  and a.distance_km / greatest(extract(epoch from b.created_date_time - a.created_date_time), 60) * 3600 > 900`;
const TRAVEL_KEPT = `select * from v_impossible_travel_candidates`;

/** Rows in one but not the other (multiset difference both ways; EXCEPT compares nulls as equal). */
async function assertRollupsMatch(label: string, pool = db.pool): Promise<void> {
  for (const [name, direct, rollup] of [
    ["hourly", HOURLY_DIRECT, HOURLY_ROLLUP],
    ["ca", CA_DIRECT, CA_ROLLUP],
    ["mfa", MFA_DIRECT, MFA_ROLLUP],
    ["travel", TRAVEL_DIRECT, TRAVEL_KEPT],
  ] as const) {
    const { rows } = await pool.query(
      `select 'missing' as side, * from ((${direct}) except all (${rollup})) a
       union all
       select 'extra' as side, * from ((${rollup}) except all (${direct})) b
       limit 5`,
    );
    assert.deepEqual(rows, [], `${label}: ${name} rollup disagrees with a direct aggregate`);
  }
  const zero = await pool.query(
    `select (select count(*) from sign_in_rollup_hourly where sign_ins <= 0)::int as h,
            (select count(*) from sign_in_ca_rollup_daily where sign_ins <= 0)::int as c,
            (select count(*) from sign_in_mfa_rollup_daily where steps <= 0)::int as m`,
  );
  assert.deepEqual(zero.rows[0], { h: 0, c: 0, m: 0 }, `${label}: empty groups are deleted`);
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
  const { rows } = await db.pool.query(
    `select (select count(*) from sign_in_rollup_hourly)::int as h, (select count(*) from sign_in_mfa_rollup_daily)::int as m,
       (select count(*) from sign_in_travel_candidates)::int as t`,
  );
  assert.ok(rows[0].h > 100 && rows[0].m > 5 && rows[0].t > 0, JSON.stringify(rows[0]));
  await assertRollupsMatch("simulator");
});

const UPSERT_0013 = `
insert into sign_ins as s (tenant_id, id, created_date_time, stream, raw, first_seen_at, last_changed_at)
select $1, e ->> 'id', (e ->> 'createdDateTime')::timestamptz, $2, e, $3, $3 from jsonb_array_elements($4::jsonb) as e
on conflict (tenant_id, id, created_date_time) do update
  set raw = excluded.raw, last_changed_at = excluded.last_changed_at, revision = s.revision + 1
  where s.raw is distinct from excluded.raw`;
const upsertAsOf0013: PageWriter = (c, tenantId, stream, page, seenAt) =>
  c.query(UPSERT_0013, [tenantId, stream, seenAt, JSON.stringify(page.map((e) => e.raw))]);

test("migrating a database that already holds sign-ins fills the rollups and travel pairs from them", async () => {
  const before = await createTestDatabase({ migrate: false });
  try {
    // The schema as of 0013, then sign-ins, then 0014 and 0015 with their back-fills.
    await runner({
      databaseUrl: before.url,
      dir: MIGRATIONS_DIR,
      direction: "up",
      migrationsTable: "schema_migrations",
      count: 6,
      singleTransaction: true,
      log: () => undefined,
    });
    // Written with the columns 0013 has (the daemon's upsert writes columns later migrations add).
    await loadSimulatedSignIns(before.pool, { days: 3, users: 100, write: upsertAsOf0013 });
    assert.deepEqual((await migrate(before.url, silentLog)).slice(0, 2), ["0014_rollups", "0015_fast_views"]);
    const { rows } = await before.pool.query(
      `select (select count(*) from sign_in_mfa_rollup_daily)::int as m, (select count(*) from sign_in_travel_candidates)::int as t`,
    );
    assert.ok(rows[0].m > 0 && rows[0].t > 0, JSON.stringify(rows[0]));
    await assertRollupsMatch("migrated with data", before.pool);
  } finally {
    await before.drop();
  }
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

const LONDON = { city: "London", countryOrRegion: "GB", geoCoordinates: { latitude: 51.5, longitude: -0.12 } };
const SYDNEY = { city: "Sydney", countryOrRegion: "AU", geoCoordinates: { latitude: -33.87, longitude: 151.21 } };
const travel = (id: string, createdDateTime: string, location: object, patch: Record<string, unknown> = {}) =>
  event(id, createdDateTime, { isInteractive: true, location, ...patch });

async function pairs(tenant: string): Promise<string[]> {
  const { rows } = await db.pool.query<{ pair: string }>(
    `select previous_id || '>' || id as pair from v_impossible_travel_candidates where tenant_id = $1 order by 1`,
    [tenant],
  );
  return rows.map((r) => r.pair);
}

test("travel candidates follow late arrivals and re-publishes: only the changed sign-ins' pairs are recomputed", async () => {
  const tenant = "t-travel";
  const now = new Date();
  await upsertPages(db.pool, tenant, [travel("b", "2026-03-20T10:00:00Z", SYDNEY)], now);
  assert.deepEqual(await pairs(tenant), []);
  // The earlier London sign-in arrives late: Sydney 4 h after London is impossible.
  await upsertPages(db.pool, tenant, [travel("a", "2026-03-20T06:00:00Z", LONDON)], now);
  assert.deepEqual(await pairs(tenant), ["a>b"]);
  await assertRollupsMatch("late predecessor");
  // A Sydney sign-in between them becomes b's predecessor (0 km) and is itself impossible after London.
  await upsertPages(db.pool, tenant, [travel("c", "2026-03-20T08:00:00Z", SYDNEY)], now);
  assert.deepEqual(await pairs(tenant), ["a>c"]);
  await assertRollupsMatch("sign-in in between");
  // c is re-published as a failure: it no longer counts, so b pairs with London again.
  await upsertPages(
    db.pool,
    tenant,
    [travel("c", "2026-03-20T08:00:00Z", SYDNEY, { status: { errorCode: 50126 } })],
    now,
  );
  assert.deepEqual(await pairs(tenant), ["a>b"]);
  await assertRollupsMatch("predecessor fails");
  // a is re-published from Sydney: no journey left; a failed sign-in and a non-interactive one change nothing.
  await upsertPages(
    db.pool,
    tenant,
    [
      travel("a", "2026-03-20T06:00:00Z", SYDNEY),
      travel("f", "2026-03-20T09:00:00Z", LONDON, { status: { errorCode: 50126 } }),
      event("n", "2026-03-20T09:30:00Z", { location: LONDON }),
    ],
    now,
  );
  assert.deepEqual(await pairs(tenant), []);
  await assertRollupsMatch("journey gone");
  // A day later a London sign-in pairs with the latest Sydney one of the previous 24 h (b), not an older one.
  await upsertPages(db.pool, tenant, [travel("d", "2026-03-21T02:00:00Z", LONDON)], now);
  assert.deepEqual(await pairs(tenant), ["b>d"]);
  await assertRollupsMatch("next day");
});

test("MFA steps move with a re-publish that changes them", async () => {
  const tenant = "t-mfa";
  // As production beta events carry them: empty step requirements, the sign-in's requirement decides.
  const step = (method: string, succeeded: boolean, detail: string) => ({
    authenticationMethod: method,
    succeeded,
    authenticationStepResultDetail: detail,
    authenticationStepRequirement: "",
  });
  const mfa = (steps: unknown[]) => ({
    authenticationRequirement: "multiFactorAuthentication",
    authenticationDetails: steps,
  });
  const at = "2026-03-22T10:00:00Z";
  const denied = "MFA denied; user declined the authentication";
  await upsertPages(
    db.pool,
    tenant,
    [
      event(
        "m1",
        at,
        mfa([step("Password", true, "Correct password"), step("Mobile app notification", false, denied)]),
      ),
      // A token claim is no MFA prompt; a v1.0 500121 (no authenticationDetails) is one denied prompt.
      event("m2", at, mfa([step("Previously satisfied", true, "MFA requirement satisfied by claim in the token")])),
      event("m3", at, { status: { errorCode: 500121, additionalDetails: denied }, authenticationDetails: undefined }),
    ],
    new Date(),
  );
  await assertRollupsMatch("mfa insert");
  await upsertPages(
    db.pool,
    tenant,
    [
      event(
        "m1",
        at,
        mfa([
          step("Password", true, "Correct password"),
          step("Mobile app notification", true, "MFA successfully completed"),
        ]),
      ),
    ],
    new Date(),
  );
  await assertRollupsMatch("mfa re-publish");
  const { rows } = await db.pool.query(
    `select authentication_method, succeeded, step_result_detail, steps::int from v_mfa_outcomes_daily
     where tenant_id = $1 order by 1`,
    [tenant],
  );
  assert.deepEqual(rows, [
    {
      authentication_method: "Mobile app notification",
      succeeded: true,
      step_result_detail: "MFA successfully completed",
      steps: 1,
    },
    { authentication_method: null, succeeded: false, step_result_detail: denied, steps: 1 },
  ]);
});

test("concurrent writers of one tenant: the later transaction waits and computes the pair spanning both", async () => {
  const tenant = "t-travel-concurrent";
  const page = (raw: Record<string, unknown>) => [
    { id: String(raw.id), createdDateTime: String(raw.createdDateTime), raw },
  ];
  const first = await db.pool.connect();
  const second = await db.pool.connect();
  try {
    // Different days and places: the rollups share no key, so only the travel lock can make the second one wait.
    const secondPid = (await second.query<{ pid: number }>("select pg_backend_pid() as pid")).rows[0]?.pid;
    await first.query("begin");
    await upsertSignIns(
      first,
      tenant,
      "interactiveUser",
      page(travel("x1", "2026-03-24T20:00:00Z", LONDON)),
      new Date(),
    );
    await second.query("begin");
    const pending = upsertSignIns(
      second,
      tenant,
      "interactiveUser",
      page(travel("x2", "2026-03-25T02:00:00Z", SYDNEY)),
      new Date(),
    );
    // The second writer's trigger waits for the first transaction's per-tenant lock.
    for (let i = 0; ; i++) {
      const { rows } = await db.pool.query(
        `select count(*)::int as n from pg_stat_activity
         where pid = $1 and wait_event_type = 'Lock' and wait_event = 'advisory'`,
        [secondPid],
      );
      if (rows[0].n > 0) {
        break;
      }
      assert.ok(i < 200, "the second writer never waited for the first one's lock");
      await new Promise((r) => setTimeout(r, 25));
    }
    await first.query("commit");
    await pending;
    await second.query("commit");
  } finally {
    first.release();
    second.release();
  }
  assert.deepEqual(await pairs(tenant), ["x1>x2"]);
  await assertRollupsMatch("concurrent writers");
});

test("dropping expired months deletes their rollup rows and keeps the rest", async () => {
  const tenant = "t-rollup-retention";
  await ensureUpcomingPartitions(db.pool, new Date("2033-01-01T00:00:00Z"), 3);
  await upsertPages(
    db.pool,
    tenant,
    [
      ...["2033-01-10", "2033-01-31T23", "2033-02-01T00", "2033-03-20"].map((d, i) =>
        event(`r${i}`, d.length === 10 ? `${d}T08:00:00Z` : `${d}:30:00Z`),
      ),
      // An impossible journey across the month boundary: it goes with January, its earlier sign-in.
      travel("j1", "2033-01-31T22:00:00Z", LONDON),
      travel("j2", "2033-02-01T03:00:00Z", SYDNEY),
    ],
    new Date(),
  );
  await assertRollupsMatch("before drop");
  assert.deepEqual(await pairs(tenant), ["j1>j2"]);
  const count = async () =>
    (
      await db.pool.query(
        `select (select coalesce(sum(sign_ins), 0) from sign_in_rollup_hourly where tenant_id = $1)::int as h,
                (select coalesce(sum(sign_ins), 0) from sign_in_ca_rollup_daily where tenant_id = $1)::int as c`,
        [tenant],
      )
    ).rows[0];
  assert.deepEqual(await count(), { h: 6, c: 12 });
  // 40 days before 2033-03-15 is 2033-02-03: January (and every older test month) goes, February stays.
  const dropped = await withTransaction(db.pool, (c) =>
    dropExpiredPartitions(c, 40 * DAY, new Date("2033-03-15T00:00:00Z")),
  );
  assert.ok(dropped.some((d) => d.name === "sign_ins_2033_01"));
  assert.ok(!dropped.some((d) => d.name === "sign_ins_2033_02"));
  assert.deepEqual(await count(), { h: 3, c: 6 });
  await assertRollupsMatch("after drop");
  assert.deepEqual(await pairs(tenant), []);
  const { rows } = await db.pool.query(
    `select (select count(*) from sign_in_rollup_hourly where hour < '2033-02-01Z')::int as h,
            (select count(*) from sign_in_ca_rollup_daily where day < '2033-02-01Z')::int as c`,
  );
  assert.deepEqual(rows[0], { h: 0, c: 0 });
});
