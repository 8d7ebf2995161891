import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { withTransaction } from "../src/store/db.ts";
import { dropExpiredPartitions, ensureUpcomingPartitions, PARTITIONED_TABLES } from "../src/store/partitions.ts";
import { createTestDatabase, type TestDatabase } from "./helpers/db.ts";
import { upsertPages } from "./helpers/views-fixture.ts";

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase();
});
after(() => db.drop());

const DAY = 86_400_000;

async function partitions(): Promise<string[]> {
  const { rows } = await db.pool.query<{ name: string }>(
    `select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid
     where i.inhparent = any(array['sign_ins', 'sign_in_ca_policies', 'sign_in_risk_events', 'sign_in_authentication_details']::regclass[])
     order by 1`,
  );
  return rows.map((r) => r.name);
}

const event = (id: string, createdDateTime: string) => ({
  id,
  createdDateTime,
  userPrincipalName: "ann@contoso.example",
  status: { errorCode: 0 },
  location: { countryOrRegion: "GB" },
  riskEventTypes_v2: ["unfamiliarFeatures"],
  appliedConditionalAccessPolicies: [
    { id: "p1", displayName: "MFA", result: "success", enforcedGrantControls: ["Mfa"] },
  ],
  authenticationDetails: [{ authenticationMethod: "Password", succeeded: true }],
});

const childCounts = async (month: string) =>
  (
    await db.pool.query(
      `select (select count(*) from sign_ins where to_char(created_date_time at time zone 'UTC', 'YYYY_MM') = $1)::int as s,
              (select count(*) from sign_in_ca_policies where to_char(created_date_time at time zone 'UTC', 'YYYY_MM') = $1)::int as ca,
              (select count(*) from sign_in_risk_events where to_char(created_date_time at time zone 'UTC', 'YYYY_MM') = $1)::int as risk,
              (select count(*) from sign_in_authentication_details where to_char(created_date_time at time zone 'UTC', 'YYYY_MM') = $1)::int as auth`,
      [month],
    )
  ).rows[0];

test("ensureUpcomingPartitions creates this month and the next ones for sign_ins and every child table, idempotently", async () => {
  const now = new Date("2030-11-20T12:00:00Z");
  const names = await withTransaction(db.pool, (c) => ensureUpcomingPartitions(c, now, 2));
  assert.deepEqual(names, ["sign_ins_2030_11", "sign_ins_2030_12", "sign_ins_2031_01"]);
  const again = await withTransaction(db.pool, (c) => ensureUpcomingPartitions(c, now, 2));
  assert.deepEqual(again, names);
  const all = await partitions();
  for (const table of PARTITIONED_TABLES) {
    for (const month of ["2030_11", "2030_12", "2031_01"]) {
      assert.ok(all.includes(`${table}_${month}`), `${table}_${month}`);
    }
  }
  await assert.rejects(
    withTransaction(db.pool, (c) => ensureUpcomingPartitions(c, now, -1)),
    RangeError,
  );
});

test("rows caught by the default partitions (parent and children) move into a month when it is created", async () => {
  await upsertPages(db.pool, "t-stray", [event("stray-1", "2031-06-03T10:00:00Z")], new Date());
  const inDefault = await db.pool.query(
    "select (select count(*) from sign_ins_default)::int as s, (select count(*) from sign_in_ca_policies_default)::int as ca",
  );
  assert.deepEqual(inDefault.rows[0], { s: 1, ca: 1 });
  await withTransaction(db.pool, (c) => ensureUpcomingPartitions(c, new Date("2031-06-01T00:00:00Z"), 0));
  const after = await db.pool.query(
    `select (select count(*) from sign_ins_default)::int + (select count(*) from sign_in_ca_policies_default)::int
          + (select count(*) from sign_in_risk_events_default)::int + (select count(*) from sign_in_authentication_details_default)::int as strays,
            (select count(*) from sign_ins_2031_06)::int as s, (select count(*) from sign_in_ca_policies_2031_06)::int as ca,
            (select count(*) from sign_in_risk_events_2031_06)::int as risk, (select count(*) from sign_in_authentication_details_2031_06)::int as auth,
            (select user_principal_name from sign_ins_2031_06) as upn`,
  );
  assert.deepEqual(after.rows[0], { strays: 0, s: 1, ca: 1, risk: 1, auth: 1, upn: "ann@contoso.example" });
});

test("dropExpiredPartitions drops whole months older than the retention, children too, and keeps the rest", async () => {
  const now = new Date("2032-06-15T00:00:00Z");
  await withTransaction(db.pool, (c) => ensureUpcomingPartitions(c, new Date("2032-01-01T00:00:00Z"), 6));
  await upsertPages(
    db.pool,
    "t-ret",
    ["2032-01-10", "2032-02-28", "2032-03-10", "2032-03-20", "2032-06-01"].map((d, i) =>
      event(`r${i}`, `${d}T08:00:00Z`),
    ),
    new Date(),
  );
  // 90 days before 2032-06-15 is 2032-03-17: January and February lie entirely before it; March does not.
  const dropped = await withTransaction(db.pool, async (c) => {
    await c.query("set local timezone = 'America/New_York'"); // bounds are read zone-independently
    return dropExpiredPartitions(c, 90 * DAY, now);
  });
  const droppedNames = dropped.map((d) => d.name);
  for (const table of PARTITIONED_TABLES) {
    assert.ok(droppedNames.includes(`${table}_2032_01`) && droppedNames.includes(`${table}_2032_02`), table);
    assert.ok(!droppedNames.some((n) => n === `${table}_2032_03`), table);
  }
  assert.ok(
    droppedNames.indexOf("sign_in_ca_policies_2032_01") < droppedNames.indexOf("sign_ins_2032_01"),
    "children first",
  );
  const jan = dropped.find((d) => d.name === "sign_ins_2032_01");
  assert.deepEqual(
    [jan?.parent, jan?.from.toISOString(), jan?.to.toISOString()],
    ["sign_ins", "2032-01-01T00:00:00.000Z", "2032-02-01T00:00:00.000Z"],
  );
  // Older test months (2030/2031) were dropped as well; the default partitions never are.
  assert.ok(droppedNames.includes("sign_ins_2030_11"));
  const left = await partitions();
  assert.ok(left.includes("sign_ins_default") && left.includes("sign_in_ca_policies_default"));
  assert.ok(!left.some((n) => /_20(30|31)_|_2032_0[12]$/.test(n)), left.join(","));
  assert.deepEqual(await childCounts("2032_03"), { s: 2, ca: 2, risk: 2, auth: 2 });
  assert.deepEqual(await childCounts("2032_06"), { s: 1, ca: 1, risk: 1, auth: 1 });
  const rows = await db.pool.query("select count(*)::int as n from sign_ins where tenant_id = 't-ret'");
  assert.equal(rows.rows[0].n, 3);
  // Nothing more to drop.
  assert.deepEqual(await withTransaction(db.pool, (c) => dropExpiredPartitions(c, 90 * DAY, now)), []);
  await assert.rejects(
    withTransaction(db.pool, (c) => dropExpiredPartitions(c, 0, now)),
    RangeError,
  );
});
