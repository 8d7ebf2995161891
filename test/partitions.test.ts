import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { randomBytes } from "node:crypto";

import pg from "pg";

import { withTransaction } from "../src/store/db.ts";
import {
  dropExpiredPartitions,
  ensureMonths,
  ensureUpcomingPartitions,
  monthsBetween,
  PARTITIONED_TABLES,
} from "../src/store/partitions.ts";
import { upsertSignIns } from "../src/store/signins.ts";
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
  const names = await ensureUpcomingPartitions(db.pool, now, 2);
  assert.deepEqual(names, ["sign_ins_2030_11", "sign_ins_2030_12", "sign_ins_2031_01"]);
  const again = await ensureUpcomingPartitions(db.pool, now, 2);
  assert.deepEqual(again, names);
  const all = await partitions();
  for (const table of PARTITIONED_TABLES) {
    for (const month of ["2030_11", "2030_12", "2031_01"]) {
      assert.ok(all.includes(`${table}_${month}`), `${table}_${month}`);
    }
  }
  await assert.rejects(ensureUpcomingPartitions(db.pool, now, -1), RangeError);
});

test("no default partitions: every row is in its month's partition (a missing month fails, never hides)", async () => {
  const defaults = await db.pool.query(
    "select count(*)::int as n from pg_partitioned_table where partdefid <> 0 and partrelid::regclass::text = any($1)",
    [PARTITIONED_TABLES],
  );
  assert.equal(defaults.rows[0].n, 0);
});

test("many creators of the same months at once: every one succeeds, each month exists once", async () => {
  // Separate connections, so each creator is its own backend; fresh months each round (the race needed a month
  // that did not exist yet). Fixed dates: nothing here depends on today.
  const pool = new pg.Pool({ connectionString: db.url, max: 12 });
  try {
    for (let round = 0; round < 6; round++) {
      const first = new Date(Date.UTC(2040 + round, 0, 1));
      const months = monthsBetween(first, new Date(Date.UTC(2040 + round, 2, 1)));
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) => ensureMonths(pool, i % 2 === 0 ? months : [...months].reverse())),
      );
      const failures = results.filter((r) => r.status === "rejected").map((r) => String(r.reason));
      assert.deepEqual(failures, [], `round ${round}`);
      const all = await partitions();
      for (const table of PARTITIONED_TABLES) {
        for (const m of ["01", "02", "03"]) {
          assert.equal(all.filter((n) => n === `${table}_${2040 + round}_${m}`).length, 1, `${table} ${m}`);
        }
      }
    }
  } finally {
    await pool.end();
  }
});

test("creating months while writers write and scan sign_ins: no deadlock, no failed write", async () => {
  const pool = new pg.Pool({ connectionString: db.url, max: 12 });
  try {
    await ensureMonths(pool, [new Date("2050-01-01T00:00:00Z")]);
    let stop = false;
    let writes = 0;
    // Two writers, each page in its own transaction that first scans every partition (as the triggers do),
    // then upserts sign-ins whose child rows fill the child tables.
    const writer = async (w: number) => {
      for (let i = 0; !stop; i++) {
        await withTransaction(pool, async (c) => {
          await c.query("select count(*) from sign_ins where user_principal_name = $1", [`w${w}@contoso.example`]);
          await upsertSignIns(
            c,
            "t-concurrent",
            "interactiveUser",
            [0, 1, 2].map((k) => {
              const raw = event(`w${w}-${i}-${k}`, `2050-01-1${w}T10:00:0${k}Z`);
              return { id: raw.id, createdDateTime: raw.createdDateTime, raw };
            }),
            new Date(),
          );
          await c.query("select count(*) from sign_in_ca_policies where policy_id = 'p1'");
        });
        writes++;
      }
    };
    const writers = [writer(1), writer(2)];
    try {
      for (let m = 1; m <= 8; m++) {
        await Promise.all([
          ensureMonths(pool, [new Date(Date.UTC(2050, m, 1))]),
          ensureMonths(pool, [new Date(Date.UTC(2050, m, 1)), new Date(Date.UTC(2050, m + 1, 1))]),
        ]);
      }
    } finally {
      stop = true;
      await Promise.all(writers);
    }
    assert.ok(writes > 0);
    const stored = await db.pool.query("select count(*)::int as n from sign_ins where tenant_id = 't-concurrent'");
    assert.equal(stored.rows[0].n, writes * 3);
  } finally {
    await pool.end();
  }
});

test("no other login can block partition creation: the maintenance lock is a table only the daemon's role may lock", async () => {
  const role = `bi_${randomBytes(4).toString("hex")}`;
  const password = randomBytes(9).toString("hex");
  await db.pool.query(`create role ${role} login password '${password}' in role signin_reader`);
  const url = new URL(db.url);
  url.username = role;
  url.password = password;
  const bi = new pg.Client({ connectionString: url.toString() });
  await bi.connect();
  try {
    await bi.query("begin");
    // The former advisory lock is no longer what creation waits for.
    await bi.query("select pg_advisory_xact_lock(hashtext('signin_ensure_partition'))");
    await assert.rejects(bi.query("lock table signin_partition_maintenance in exclusive mode"), { code: "42501" });
    await bi.query("rollback");
    await bi.query("begin");
    await bi.query("select pg_advisory_xact_lock(hashtext('signin_ensure_partition'))");
    assert.deepEqual(await ensureMonths(db.pool, [new Date("2060-05-01T00:00:00Z")]), ["sign_ins_2060_05"]);
    await bi.query("rollback");
  } finally {
    await bi.end();
    await db.pool.query(`drop role ${role}`);
  }
});

test("a retention drop behind a long reader gives up after its lock timeout and leaves everything as it was", async () => {
  await ensureMonths(db.pool, [new Date("2070-01-01T00:00:00Z")]);
  const reader = await db.pool.connect();
  try {
    await reader.query("begin");
    await reader.query("select count(*) from sign_ins");
    const error = await withTransaction(db.pool, (c) =>
      dropExpiredPartitions(c, 30 * DAY, new Date("2080-01-01T00:00:00Z")),
    ).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.equal((error as { code?: string }).code, "55P03", String(error));
  } finally {
    await reader.query("rollback");
    reader.release();
  }
  assert.ok((await partitions()).includes("sign_ins_2070_01"));
});

test("dropExpiredPartitions drops whole months older than the retention, children too, and keeps the rest", async () => {
  const now = new Date("2032-06-15T00:00:00Z");
  await ensureUpcomingPartitions(db.pool, new Date("2032-01-01T00:00:00Z"), 6);
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
  // Older test months (2030/2031) were dropped as well.
  assert.ok(droppedNames.includes("sign_ins_2030_11"));
  const left = await partitions();
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
