// Migration 0029 rewrote signin_password_spray and v_new_country_attempts for speed, keeping their contract: the
// definitions they replaced (0024's) are kept here as oracles, created in the test database under other names, and
// each new definition must return the same rows (multiset difference both ways) on the simulator's data and on
// hand-made sequences at the edges of the spray windows, for several windows and parameters.

import assert from "node:assert/strict";
import { test } from "node:test";

import { upsertPages, withSimulatedSignIns } from "./helpers/views-fixture.ts";

type Raw = Record<string, unknown>;

const ctx = withSimulatedSignIns({ days: 7 });

const MIN = 60_000;

// 0024's signin_password_spray, verbatim but for its name.
const ORACLE_SPRAY = `
create function oracle_password_spray(p_from timestamptz, p_to timestamptz, p_min_users integer default 5,
  p_window interval default interval '20 minutes')
returns table (tenant_id text, ip_address text, burst_start timestamptz, burst_end timestamptz, failed_users bigint,
  failures bigint, successful_users bigint, countries text[], apps text[], error_codes integer[])
language sql stable parallel safe as $$
  with ips as (
    select f.tenant_id, f.ip_address
    from sign_ins f
    where f.outcome in ('bad_credentials', 'locked', 'disabled') and f.ip_address <> ''
      and f.created_date_time >= p_from and f.created_date_time < p_to + p_window
    group by f.tenant_id, f.ip_address
    having count(distinct f.user_principal_name) >= p_min_users
  ), g as (
    select f.tenant_id, f.ip_address, f.created_date_time as t,
      lead(f.created_date_time) over (partition by f.tenant_id, f.ip_address, f.user_principal_name
                                      order by f.created_date_time) as next_t
    from ips
    join sign_ins f on f.tenant_id = ips.tenant_id and f.ip_address = ips.ip_address
    where f.outcome in ('bad_credentials', 'locked', 'disabled')
      and f.created_date_time >= p_from and f.created_date_time < p_to + p_window
  ), ev as (
    select g.tenant_id, g.ip_address, g.t - p_window as at, 1 as kind, 1 as delta
    from g where g.next_t is distinct from g.t
    union all
    select g.tenant_id, g.ip_address, least(g.t, coalesce(g.next_t - p_window, g.t)), 1, -1
    from g where g.next_t is distinct from g.t
    union all
    select g.tenant_id, g.ip_address, g.t, 0, 0
    from g where g.t >= p_from and g.t < p_to
  ), sweep as (
    select ev.tenant_id, ev.ip_address, ev.at, ev.kind,
      sum(ev.delta) over (partition by ev.tenant_id, ev.ip_address order by ev.at, ev.kind
                          rows between unbounded preceding and current row) as users_in_window
    from ev
  ), starts as (
    select w.tenant_id, w.ip_address, w.at as t from sweep w where w.kind = 0 and w.users_in_window >= p_min_users
  ), islands as (
    select s.*, sum(case when s.t > s.prev + p_window then 1 else 0 end)
      over (partition by s.tenant_id, s.ip_address order by s.t) as burst
    from (select st.*, lag(st.t) over (partition by st.tenant_id, st.ip_address order by st.t) as prev from starts st) s
  ), bursts as (
    select i.tenant_id, i.ip_address, min(i.t) as burst_start, max(i.t) + p_window as burst_end
    from islands i group by i.tenant_id, i.ip_address, i.burst
  )
  select b.tenant_id, b.ip_address, b.burst_start, b.burst_end, f.failed_users, f.failures, ok.successful_users,
    f.countries, f.apps, f.error_codes
  from bursts b
  cross join lateral (
    select count(distinct g.user_principal_name) as failed_users, count(*) as failures,
      array_agg(distinct g.location_country_or_region) filter (where g.location_country_or_region <> '') as countries,
      array_agg(distinct g.app_display_name) filter (where g.app_display_name <> '') as apps,
      array_agg(distinct g.status_error_code) as error_codes
    from sign_ins g
    where g.tenant_id = b.tenant_id and g.ip_address = b.ip_address
      and g.outcome in ('bad_credentials', 'locked', 'disabled') and g.ip_address <> ''
      and g.created_date_time >= b.burst_start and g.created_date_time < b.burst_end
  ) f
  cross join lateral (
    select count(distinct o.user_principal_name) as successful_users
    from sign_ins o
    where o.tenant_id = b.tenant_id and o.ip_address = b.ip_address
      and o.created_date_time >= p_from and o.created_date_time < p_to
      and signin_password_verified(o.status_error_code)
  ) ok
  where f.failed_users > ok.successful_users
$$`;

// 0024's v_new_country_attempts, verbatim but for its name.
const ORACLE_NEW_COUNTRY = `
create view oracle_new_country_attempts as
select s.tenant_id, s.id, c.created_date_time, s.user_principal_name, s.location_country_or_region as country_or_region,
  s.location_city as city, s.ip_address, s.app_display_name, s.sign_in_event_type, s.status_error_code as error_code,
  s.outcome, s.autonomous_system_number, s.user_agent,
  exists (select 1 from sign_ins b
          where b.tenant_id = s.tenant_id and b.user_principal_name = s.user_principal_name and b.outcome = 'success'
            and b.created_date_time >= s.created_date_time - interval '14 days'
            and b.created_date_time < s.created_date_time) as has_baseline
from sign_in_new_country_attempts c
join sign_ins s on s.tenant_id = c.tenant_id and s.id = c.id and s.created_date_time = c.created_date_time`;

// Created on first use (the fixture's database exists once its own before hook has run).
let oracles: Promise<unknown> | null = null;
const withOracles = () =>
  (oracles ??= ctx.db.pool.query(ORACLE_SPRAY).then(() => ctx.db.pool.query(ORACLE_NEW_COUNTRY)));

/** Rows of `a` not in `b` and of `b` not in `a` (multisets; EXCEPT compares nulls as equal), at most 5. */
async function difference(a: string, b: string, params: unknown[]): Promise<unknown[]> {
  await withOracles();
  const { rows } = await ctx.db.pool.query(
    `(select 'missing' as side, * from ((${b}) except all (${a})) x limit 5)
     union all
     (select 'extra' as side, * from ((${a}) except all (${b})) y limit 5)`,
    params,
  );
  return rows;
}

async function count(sql: string, params: unknown[]): Promise<number> {
  await withOracles();
  return Number((await ctx.db.pool.query(`select count(*)::int as n from (${sql}) x`, params)).rows[0]?.n);
}

/** [from, to) ranges over the fixture: all of it, each day, and odd ones that cut through hours. */
function ranges(): Array<[Date, Date]> {
  const { from, to } = ctx.fx;
  const out: Array<[Date, Date]> = [[new Date(from.getTime() - 60 * MIN), new Date(to.getTime() + 60 * MIN)]];
  for (let t = from.getTime(); t < to.getTime(); t += 1440 * MIN) {
    out.push([new Date(t), new Date(t + 1440 * MIN)]);
  }
  out.push([new Date(from.getTime() + 37 * 60 * MIN + 7 * MIN), new Date(from.getTime() + 101 * 60 * MIN + 13 * MIN)]);
  return out;
}

const SPRAY_PARAMS: ReadonlyArray<readonly [number, string]> = [
  [5, "20 minutes"],
  [3, "20 minutes"],
  [3, "45 minutes"],
  [2, "5 minutes"],
  [10, "1 hour"],
  [1, "1 minute"],
  [0, "20 minutes"],
  [5, "0 seconds"],
  [0, "-5 minutes"],
];

test("signin_password_spray (0029) returns 0024's rows on the simulator's data, for every range and parameter", async () => {
  const [all] = ranges();
  assert.ok(all);
  // Not a vacuous comparison: the simulator's sprays are found.
  assert.ok((await count("select * from oracle_password_spray($1, $2)", all)) > 0, "the simulator sprays");
  for (const [from, to] of ranges()) {
    for (const [users, window] of SPRAY_PARAMS) {
      const params = [from, to, users, window];
      assert.deepEqual(
        await difference(
          "select * from signin_password_spray($1, $2, $3, $4::interval)",
          "select * from oracle_password_spray($1, $2, $3, $4::interval)",
          params,
        ),
        [],
        `[${from.toISOString()}, ${to.toISOString()}) min ${users} window ${window}`,
      );
    }
  }
  // The defaults too.
  assert.deepEqual(
    await difference("select * from signin_password_spray($1, $2)", "select * from oracle_password_spray($1, $2)", all),
    [],
  );
});

test("signin_password_spray (0029) returns 0024's rows at the windows' edges", async () => {
  const T = "t-spray-edges";
  const base = new Date(Date.UTC(2026, 2, 5, 9, 0));
  const t = (m: number, s = 0) => new Date(base.getTime() + m * MIN + s * 1000);
  const fail = (id: string, at: Date, ip: string, user: string, code = 50126): Raw => ({
    id,
    createdDateTime: at.toISOString(),
    userPrincipalName: user,
    signInEventTypes: ["interactiveUser"],
    isInteractive: true,
    ipAddress: ip,
    appDisplayName: id.length % 2 ? "Office 365" : "Azure Portal",
    status: { errorCode: code },
    location: { city: "Lagos", countryOrRegion: id.length % 3 ? "NG" : "GH" },
  });
  const events: Raw[] = [];
  // 203.0.113.1: users exactly one window (20 min) apart, so a window holds one or two of them depending on the edge.
  for (let i = 0; i < 8; i++) {
    events.push(fail(`e${i}`, t(i * 20), "203.0.113.1", `u${i % 4}@x.example`));
    events.push(fail(`f${i}`, t(i * 20 + 19, 59), "203.0.113.1", `w${i % 3}@x.example`));
  }
  // 203.0.113.2: the same user twice at the same instant (two ids), repeats within a window, lockouts and disabled
  // accounts, and a second burst 21 minutes after the first one's last start.
  for (let i = 0; i < 6; i++) {
    events.push(fail(`g${i}a`, t(i), "203.0.113.2", `u${i}@x.example`));
    events.push(fail(`g${i}b`, t(i), "203.0.113.2", `u${i}@x.example`, i % 2 ? 50053 : 50057));
    events.push(fail(`g${i}c`, t(i + 4), "203.0.113.2", `u${i}@x.example`));
    events.push(fail(`h${i}`, t(46 + i * 2), "203.0.113.2", `v${i}@x.example`));
  }
  // 203.0.113.3: a spray whose IP also signs in some of its users (successes and an MFA interrupt).
  for (let i = 0; i < 7; i++) {
    events.push(fail(`k${i}`, t(i, 30), "203.0.113.3", `u${i}@x.example`));
  }
  for (let i = 0; i < 3; i++) {
    events.push({ ...fail(`ok${i}`, t(30 + i), "203.0.113.3", `u${i}@x.example`), status: { errorCode: 0 } });
  }
  events.push({ ...fail("mfa", t(40), "203.0.113.3", "u5@x.example"), status: { errorCode: 50074 } });
  await upsertPages(ctx.db.pool, T, events, new Date());
  const found = await count("select * from oracle_password_spray($1, $2, 3, '20 minutes') where tenant_id = $3", [
    t(-30),
    t(300),
    T,
  ]);
  assert.ok(found >= 3, `the planted sprays are found (${found})`);
  for (const [from, to] of [
    [t(-30), t(300)],
    [t(0), t(20)],
    [t(0, 1), t(19, 59)],
    [t(20), t(60)],
    [t(5), t(47)],
  ] as const) {
    for (const [users, window] of [...SPRAY_PARAMS, [2, "20 minutes"], [4, "19 minutes 59 seconds"]] as const) {
      const params = [from, to, users, window, T];
      assert.deepEqual(
        await difference(
          "select * from signin_password_spray($1, $2, $3, $4::interval) where tenant_id = $5",
          "select * from oracle_password_spray($1, $2, $3, $4::interval) where tenant_id = $5",
          params,
        ),
        [],
        `[${from.toISOString()}, ${to.toISOString()}) min ${users} window ${window}`,
      );
    }
  }
});

test("v_new_country_attempts (0029) returns 0024's rows, whole and for time windows", async () => {
  const whole = await count("select * from oracle_new_country_attempts", []);
  assert.ok(whole > 20, `the simulator's users change country (${whole} attempts)`);
  assert.deepEqual(
    await difference("select * from v_new_country_attempts", "select * from oracle_new_country_attempts", []),
    [],
  );
  for (const [from, to] of ranges()) {
    assert.deepEqual(
      await difference(
        "select * from v_new_country_attempts where created_date_time >= $1 and created_date_time < $2",
        "select * from oracle_new_country_attempts where created_date_time >= $1 and created_date_time < $2",
        [from, to],
      ),
      [],
      `[${from.toISOString()}, ${to.toISOString()})`,
    );
  }
  // The time index that replaced 0024's covers the window (index-only) and 0024's is gone.
  const { rows } = await ctx.db.pool.query(
    "select indexname from pg_indexes where tablename = 'sign_in_new_country_attempts' order by 1",
  );
  assert.deepEqual(
    rows.map((r) => r.indexname),
    [
      "sign_in_new_country_attempts_pkey",
      "sign_in_new_country_attempts_time_covering_idx",
      "sign_in_new_country_attempts_user_idx",
    ],
  );
});
