// Every documented view against a database filled by the simulator through the real upsert path, each checked
// against a count computed independently in JavaScript from the events' raw JSON.

import assert from "node:assert/strict";
import { test } from "node:test";

import { withSimulatedSignIns } from "./helpers/views-fixture.ts";

type Raw = Record<string, unknown>;

const ctx = withSimulatedSignIns();

const HOUR = 3_600_000;
const obj = (v: unknown): Raw => (v && typeof v === "object" && !Array.isArray(v) ? (v as Raw) : {});
const str = (v: unknown): string | null => (typeof v === "string" ? v : null);
const code = (e: Raw): number | null => {
  const c = obj(e.status).errorCode;
  return typeof c === "number" ? c : null;
};
// Interrupts and missing codes are not failures (docs/schema.md, "Sign-in outcomes"); written out here independently
// of signin_outcome().
const INTERRUPTS = new Set([
  50140, 50074, 50076, 50079, 50072, 50125, 50058, 16000, 16001, 16003, 70043, 70044, 50097, 50089, 50199, 65001, 81010,
  700082,
]);
const failed = (e: Raw): boolean => code(e) !== null && code(e) !== 0 && !INTERRUPTS.has(code(e) as number);
const interrupted = (e: Raw): boolean => INTERRUPTS.has(code(e) as number);
// createdDateTime as 100 ns ticks since the epoch (exact ordering, like timestamptz's microseconds).
const ticks = (e: Raw): number => {
  const text = String(e.createdDateTime);
  const m = /^(.{19})(?:\.(\d+))?Z$/.exec(text);
  assert.ok(m, text);
  return (Date.parse(`${m[1]}Z`) / 1000) * 1e7 + Number((m[2] ?? "").padEnd(7, "0").slice(0, 7));
};
const ms = (e: Raw): number => Math.floor(ticks(e) / 1e4);
const hourOf = (e: Raw): number => Math.floor(ms(e) / HOUR) * HOUR;
const eventType = (e: Raw): string => {
  const t = e.signInEventTypes;
  return Array.isArray(t) && typeof t[0] === "string" ? t[0] : "interactiveUser";
};
const loc = (e: Raw) => obj(e.location);
const geo = (e: Raw) => obj(loc(e).geoCoordinates);
const count = <K>(items: Iterable<K>): Map<K, number> => {
  const m = new Map<K, number>();
  for (const k of items) {
    m.set(k, (m.get(k) ?? 0) + 1);
  }
  return m;
};
const sorted = <T>(m: Map<string, T>): Array<[string, T]> => [...m.entries()].sort(([a], [b]) => (a < b ? -1 : 1));
const range = () => [ctx.fx.from, ctx.fx.to];

test("the fixture is realistic: failures, legacy auth, risk, CA, MFA, service principals and re-publications", () => {
  assert.ok(ctx.fx.events.length > 5000, `events: ${ctx.fx.events.length}`);
  assert.ok(ctx.fx.republished > 20);
  assert.ok(ctx.fx.events.filter(failed).length > 200);
  assert.ok(ctx.fx.events.some((e) => eventType(e) === "servicePrincipal"));
});

test("v_sign_in_volume_hourly counts every event and its failures per hour and event type", async () => {
  const { rows } = await ctx.db.pool.query(
    `select sign_in_event_type, sum(sign_ins)::int as n, sum(failures)::int as f, sum(interrupts)::int as i,
       count(distinct hour)::int as hours
     from v_sign_in_volume_hourly where tenant_id = $1 and hour >= $2 and hour < $3 group by 1`,
    [ctx.fx.tenantId, ...range()],
  );
  const expected = count(ctx.fx.events.map(eventType));
  const expectedFailures = count(ctx.fx.events.filter(failed).map(eventType));
  const expectedInterrupts = count(ctx.fx.events.filter(interrupted).map(eventType));
  assert.deepEqual(
    Object.fromEntries(rows.map((r) => [r.sign_in_event_type, [r.n, r.f, r.i]])),
    Object.fromEntries(
      [...expected].map(([k, n]) => [k, [n, expectedFailures.get(k) ?? 0, expectedInterrupts.get(k) ?? 0]]),
    ),
  );
  assert.ok(ctx.fx.events.some(interrupted), "the simulator sends interrupts");
  assert.equal(Math.max(...rows.map((r) => r.hours)), 7 * 24);
  // A 24 h filter on the bucket sees exactly the last day's events.
  const day = await ctx.db.pool.query(
    "select sum(sign_ins)::int as n from v_sign_in_volume_hourly where hour >= $1::timestamptz - interval '24 hours'",
    [ctx.fx.to],
  );
  assert.equal(day.rows[0].n, ctx.fx.events.filter((e) => ms(e) >= ctx.fx.to.getTime() - 24 * HOUR).length);
});

test("v_sign_ins_by_location_hourly gives each city its coordinates and count", async () => {
  const { rows } = await ctx.db.pool.query(
    `select country_or_region, city, latitude, longitude, sum(sign_ins)::int as n
     from v_sign_ins_by_location_hourly where hour >= $1 and hour < $2 and latitude is not null
     group by 1, 2, 3, 4`,
    range(),
  );
  const expected = count(
    ctx.fx.events
      .filter((e) => typeof geo(e).latitude === "number")
      .map((e) => [loc(e).countryOrRegion, loc(e).city, geo(e).latitude, geo(e).longitude].join("|")),
  );
  assert.deepEqual(
    sorted(new Map(rows.map((r) => [[r.country_or_region, r.city, r.latitude, r.longitude].join("|"), r.n]))),
    sorted(expected),
  );
  assert.ok(rows.length > 10);
});

test("v_failed_sign_ins_hourly and _daily agree with the raw failures by reason, user and app", async () => {
  const expected = count(
    ctx.fx.events
      .filter(failed)
      .map((e) => [code(e), obj(e.status).failureReason, e.userPrincipalName ?? "", e.appDisplayName].join("|")),
  );
  for (const [view, bucket] of [
    ["v_failed_sign_ins_hourly", "hour"],
    ["v_failed_sign_ins_daily", "day"],
  ] as const) {
    const { rows } = await ctx.db.pool.query(
      `select error_code, failure_reason, coalesce(user_principal_name, '') as upn, app_display_name, sum(failures)::int as n
       from ${view} where ${bucket} >= $1 and ${bucket} < $2 group by 1, 2, 3, 4`,
      range(),
    );
    assert.deepEqual(
      sorted(new Map(rows.map((r) => [[r.error_code, r.failure_reason, r.upn, r.app_display_name].join("|"), r.n]))),
      sorted(expected),
      view,
    );
  }
  const top = await ctx.db.pool.query(
    `select error_code from v_failed_sign_ins_daily where day >= $1 and day < $2 group by 1 order by sum(failures) desc limit 1`,
    range(),
  );
  const byCode = [...count(ctx.fx.events.filter(failed).map(code))].sort((a, b) => b[1] - a[1]);
  assert.equal(top.rows[0].error_code, byCode[0]?.[0]);
});

const LEGACY = new Set([
  "exchange activesync",
  "imap",
  "imap4",
  "pop",
  "pop3",
  "smtp",
  "authenticated smtp",
  "mapi",
  "mapi over http",
  "autodiscover",
  "exchange online powershell",
  "exchange web services",
  "offline address book",
  "outlook anywhere (rpc over http)",
  "outlook service",
  "reporting web services",
  "other clients",
]);

test("v_legacy_auth_daily matches a hand count of legacy clients by user and protocol", async () => {
  const legacy = ctx.fx.events.filter((e) => LEGACY.has(String(e.clientAppUsed).toLowerCase()));
  assert.ok(legacy.length > 20, `legacy: ${legacy.length}`);
  const { rows } = await ctx.db.pool.query(
    `select user_principal_name, client_app_used, sum(sign_ins)::int as n, sum(failures)::int as f, sum(successes)::int as s,
       sum(interrupts)::int as i
     from v_legacy_auth_daily where day >= $1 and day < $2 group by 1, 2`,
    range(),
  );
  const expected = count(legacy.map((e) => `${e.userPrincipalName}|${e.clientAppUsed}`));
  assert.deepEqual(
    sorted(new Map(rows.map((r) => [`${r.user_principal_name}|${r.client_app_used}`, r.n]))),
    sorted(expected),
  );
  assert.equal(
    rows.reduce((a, r) => a + r.f + r.s + r.i, 0),
    legacy.length,
  );
  assert.equal(
    rows.reduce((a, r) => a + r.f, 0),
    legacy.filter(failed).length,
  );
});

test("v_ca_policy_outcomes_daily matches the applied policies in raw, after re-publications", async () => {
  const expected = count(
    ctx.fx.events.flatMap((e) =>
      (Array.isArray(e.appliedConditionalAccessPolicies) ? (e.appliedConditionalAccessPolicies as Raw[]) : []).map(
        (p) => `${p.id}|${p.displayName}|${p.result}`,
      ),
    ),
  );
  const { rows } = await ctx.db.pool.query(
    `select policy_id, policy_name, result, sum(sign_ins)::int as n from v_ca_policy_outcomes_daily
     where day >= $1 and day < $2 group by 1, 2, 3`,
    range(),
  );
  assert.deepEqual(
    sorted(new Map(rows.map((r) => [`${r.policy_id}|${r.policy_name}|${r.result}`, r.n]))),
    sorted(expected),
  );
  assert.ok(rows.some((r) => r.result === "failure"));
});

// The MFA steps of a sign-in, written out independently of signin_mfa_steps(): a method that is neither the
// password nor a token claim, where the step or the sign-in requires multifactor; else one failed step for 500121.
const MFA_REQUIREMENT = /^\s*(multi-?factor ?authentication|mfa)\s*$/i;
const mfaSteps = (e: Raw): string[] => {
  const steps = (Array.isArray(e.authenticationDetails) ? (e.authenticationDetails as Raw[]) : []).filter(
    (s) =>
      typeof s.authenticationMethod === "string" &&
      !/^\s*(password|previously satisfied|claim in .*token)\s*$/i.test(s.authenticationMethod) &&
      !/satisfied by claim in the token/i.test(str(s.authenticationStepResultDetail) ?? "") &&
      (MFA_REQUIREMENT.test(str(s.authenticationStepRequirement) ?? "") ||
        MFA_REQUIREMENT.test(str(e.authenticationRequirement) ?? "")),
  );
  const keys = steps.map((s) => `${s.authenticationMethod}|${s.succeeded}|${s.authenticationStepResultDetail}`);
  return keys.length === 0 && code(e) === 500121 ? [`null|false|${obj(e.status).additionalDetails}`] : keys;
};

test("v_mfa_outcomes_daily counts the real MFA steps in raw (not token claims), by method, outcome and detail", async () => {
  const expected = count(ctx.fx.events.flatMap(mfaSteps));
  const { rows } = await ctx.db.pool.query(
    `select authentication_method, succeeded, step_result_detail, sum(steps)::int as n from v_mfa_outcomes_daily
     where day >= $1 and day < $2 group by 1, 2, 3`,
    range(),
  );
  assert.deepEqual(
    sorted(new Map(rows.map((r) => [`${r.authentication_method}|${r.succeeded}|${r.step_result_detail}`, r.n]))),
    sorted(expected),
  );
  assert.ok(rows.some((r) => r.succeeded === false));
  assert.ok(rows.some((r) => /declined/.test(r.step_result_detail)));
  assert.ok(!rows.some((r) => r.authentication_method === "Previously satisfied"), "token claims are not prompts");
  // The simulator writes the requirements real tenants send, mostly "".
  const requirements = new Set(
    ctx.fx.events.flatMap((e) =>
      (Array.isArray(e.authenticationDetails) ? (e.authenticationDetails as Raw[]) : []).map(
        (s) => s.authenticationStepRequirement,
      ),
    ),
  );
  assert.ok(requirements.has("") && requirements.has("Multi-factor authentication") && requirements.has("MFA"));
});

test("v_risky_sign_ins lists exactly the risky events, with their risk event types", async () => {
  const levels = new Set(["low", "medium", "high"]);
  const risky = ctx.fx.events.filter(
    (e) =>
      levels.has(String(e.riskLevelDuringSignIn)) ||
      levels.has(String(e.riskLevelAggregated)) ||
      ["atRisk", "confirmedCompromised"].includes(String(e.riskState)),
  );
  assert.ok(risky.length > 5, `risky: ${risky.length}`);
  const { rows } = await ctx.db.pool.query(
    "select id, risk_event_types from v_risky_sign_ins where created_date_time >= $1 and created_date_time < $2",
    range(),
  );
  assert.deepEqual(
    sorted(new Map(rows.map((r) => [r.id, r.risk_event_types]))),
    sorted(new Map(risky.map((e) => [String(e.id), [...new Set(e.riskEventTypes_v2 as string[])].sort()]))),
  );
});

test("v_password_spray_candidates finds the sprayed IPs and nothing else", async () => {
  const SPRAY_CODES = new Set([50126, 50053, 50055, 50056, 50034, 50057]);
  const users = new Map<string, Set<string>>();
  for (const e of ctx.fx.events) {
    if (SPRAY_CODES.has(code(e) ?? 0) && str(e.ipAddress)) {
      const key = `${new Date(hourOf(e)).toISOString()}|${e.ipAddress}`;
      const set = users.get(key) ?? new Set();
      set.add(String(e.userPrincipalName));
      users.set(key, set);
    }
  }
  const expected = new Map([...users].filter(([, s]) => s.size >= 10).map(([k, s]) => [k, s.size]));
  assert.ok(expected.size >= 1, "the simulator sprayed at least once in the week");
  const { rows } = await ctx.db.pool.query(
    `select hour, ip_address, distinct_users, countries from v_password_spray_candidates
     where hour >= $1 and hour < $2`,
    range(),
  );
  assert.deepEqual(
    sorted(new Map(rows.map((r) => [`${r.hour.toISOString()}|${r.ip_address}`, Number(r.distinct_users)]))),
    sorted(expected),
  );
  // The sprayer came from abroad, with the simulator's attack user agents.
  for (const r of rows) {
    const agents = ctx.fx.events.filter((e) => e.ipAddress === r.ip_address).map((e) => String(e.userAgent));
    assert.ok(
      agents.some((a) => /python|BAV2ROPC|MSAL|Go-http/.test(a)),
      r.ip_address,
    );
  }
});

function distanceKm(lat1: number, lon1: number, lat2: number, lon2: number): number {
  const rad = (d: number) => (d * Math.PI) / 180;
  const h =
    Math.sin(rad(lat2 - lat1) / 2) ** 2 +
    Math.cos(rad(lat1)) * Math.cos(rad(lat2)) * Math.sin(rad(lon2 - lon1) / 2) ** 2;
  return 2 * 6371.0088 * Math.asin(Math.min(1, Math.sqrt(h)));
}

test("v_impossible_travel_candidates finds the simulated impossible journeys (same pairs as a hand computation)", async () => {
  const byUser = new Map<string, Raw[]>();
  for (const e of ctx.fx.events) {
    if (
      e.isInteractive === true &&
      code(e) === 0 &&
      typeof geo(e).latitude === "number" &&
      typeof geo(e).longitude === "number"
    ) {
      const list = byUser.get(String(e.userPrincipalName)) ?? [];
      list.push(e);
      byUser.set(String(e.userPrincipalName), list);
    }
  }
  const expected = new Map<string, number>();
  for (const list of byUser.values()) {
    list.sort((a, b) => ticks(a) - ticks(b));
    for (let i = 1; i < list.length; i++) {
      const a = list[i - 1] as Raw;
      const b = list[i] as Raw;
      const seconds = (ticks(b) - ticks(a)) / 1e7;
      if (seconds <= 0 || seconds >= 24 * 3600) {
        continue;
      }
      const km = distanceKm(
        geo(a).latitude as number,
        geo(a).longitude as number,
        geo(b).latitude as number,
        geo(b).longitude as number,
      );
      if (km > 500 && (km / Math.max(seconds, 60)) * 3600 > 900) {
        expected.set(`${a.id}->${b.id}`, Math.round(km));
      }
    }
  }
  const { rows } = await ctx.db.pool.query(
    `select previous_id, id, distance_km::float as km, speed_kmh::float as speed, country_or_region, previous_country_or_region
     from v_impossible_travel_candidates where created_date_time >= $1 and created_date_time < $2`,
    range(),
  );
  assert.deepEqual(sorted(new Map(rows.map((r) => [`${r.previous_id}->${r.id}`, Math.round(r.km)]))), sorted(expected));
  // The simulator's attack: > 60° of longitude within half an hour.
  assert.ok(
    rows.some((r) => r.km > 5000 && r.speed > 5000),
    JSON.stringify(rows.slice(0, 3)),
  );
});

test("v_first_time_countries holds each user's first successful sign-in per country", async () => {
  const first = new Map<string, Raw>();
  for (const e of ctx.fx.events) {
    if (code(e) !== 0 || !str(e.userPrincipalName) || !str(loc(e).countryOrRegion)) {
      continue;
    }
    const key = `${e.userPrincipalName}|${loc(e).countryOrRegion}`;
    const seen = first.get(key);
    if (!seen || ticks(e) < ticks(seen) || (ticks(e) === ticks(seen) && String(e.id) < String(seen.id))) {
      first.set(key, e);
    }
  }
  const { rows } = await ctx.db.pool.query(
    "select user_principal_name, country_or_region, first_sign_in_id, user_seen_before from v_first_time_countries where first_seen_at >= $1",
    [ctx.fx.from],
  );
  assert.deepEqual(
    sorted(new Map(rows.map((r) => [`${r.user_principal_name}|${r.country_or_region}`, r.first_sign_in_id]))),
    sorted(new Map([...first].map(([k, e]) => [k, String(e.id)]))),
  );
  assert.ok(
    rows.some((r) => r.user_seen_before),
    "travellers appear in a second country after their first",
  );
});

test("v_service_principal_activity_daily counts service-principal and managed-identity sign-ins", async () => {
  const sp = ctx.fx.events.filter((e) => ["servicePrincipal", "managedIdentity"].includes(eventType(e)));
  const { rows } = await ctx.db.pool.query(
    `select service_principal_id, sum(sign_ins)::int as n, sum(failures)::int as f
     from v_service_principal_activity_daily where day >= $1 and day < $2 group by 1`,
    range(),
  );
  assert.deepEqual(
    sorted(new Map(rows.map((r) => [r.service_principal_id, r.n]))),
    sorted(count(sp.map((e) => String(e.servicePrincipalId)))),
  );
  assert.equal(
    rows.reduce((a, r) => a + r.f, 0),
    sp.filter(failed).length,
  );
});

test("v_data_freshness reports checkpoint, lag, last success and last error per tenant and stream", async () => {
  const T = "tenant-fresh";
  await ctx.db.pool.query(
    `insert into checkpoints (tenant_id, stream, position, updated_at) values ($1, 'interactiveUser', now() - interval '5 minutes', now())`,
    [T],
  );
  await ctx.db.pool.query(
    `insert into cycles (tenant_id, stream, started_at, finished_at, outcome, error) values
       ($1, 'interactiveUser', now() - interval '10 minutes', now() - interval '9 minutes', 'success', null),
       ($1, 'interactiveUser', now() - interval '2 minutes', now() - interval '1 minute', 'failure', 'HTTP 503'),
       ($1, 'servicePrincipal', now() - interval '2 minutes', now() - interval '1 minute', 'failure', 'HTTP 403')`,
    [T],
  );
  const { rows } = await ctx.db.pool.query(
    `select stream, extract(epoch from checkpoint_lag)::int as lag_s, last_success_at is not null as ok, last_error, last_outcome
     from v_data_freshness where tenant_id = $1 order by stream`,
    [T],
  );
  assert.equal(rows.length, 2);
  assert.ok(rows[0].lag_s >= 299 && rows[0].lag_s < 400);
  assert.deepEqual(
    rows.map((r) => [r.stream, r.ok, r.last_error, r.last_outcome]),
    [
      ["interactiveUser", true, "HTTP 503", "failure"],
      ["servicePrincipal", false, "HTTP 403", "failure"],
    ],
  );
});

test("child rows never disagree with raw (also after re-publication)", async () => {
  const { rows } = await ctx.db.pool.query(
    `select
       (select count(*) from sign_ins s
          where (select count(*) from jsonb_array_elements(signin_array(s.raw -> 'appliedConditionalAccessPolicies')) p(v)
                 where signin_ca_row_kept(signin_text(p.v -> 'result')))
          <> (select count(*) from sign_in_ca_policies c where c.tenant_id = s.tenant_id and c.sign_in_id = s.id
                and c.created_date_time = s.created_date_time))::int as ca_mismatch,
       (select count(*) from sign_ins s where jsonb_array_length(signin_array(s.raw -> 'authenticationDetails'))
          <> (select count(*) from sign_in_authentication_details c where c.tenant_id = s.tenant_id and c.sign_in_id = s.id
                and c.created_date_time = s.created_date_time))::int as auth_mismatch,
       (select count(*) from sign_in_ca_policies c join sign_ins s on s.tenant_id = c.tenant_id and s.id = c.sign_in_id
          and s.created_date_time = c.created_date_time
          where s.raw -> 'appliedConditionalAccessPolicies' -> (c.ordinal - 1) ->> 'result' is distinct from c.result)::int as result_mismatch`,
  );
  assert.deepEqual(rows[0], { ca_mismatch: 0, auth_mismatch: 0, result_mismatch: 0 });
  const risk = await ctx.db.pool.query(
    `select count(*)::int as n from sign_ins s where s.revision > 1 and s.risk_state = 'atRisk'
       and not exists (select 1 from sign_in_risk_events r where r.tenant_id = s.tenant_id and r.sign_in_id = s.id
                       and r.created_date_time = s.created_date_time)`,
  );
  assert.equal(risk.rows[0].n, 0, "a re-publication that adds risk adds its risk event rows");
});

test("child rows tolerate drift: null, object and scalar where Graph documents arrays", async () => {
  const { upsertPages } = await import("./helpers/views-fixture.ts");
  const base = { createdDateTime: "2026-03-08T12:00:00Z", userPrincipalName: "drift@contoso.example" };
  await upsertPages(
    ctx.db.pool,
    "tenant-drift",
    [
      {
        ...base,
        id: "d1",
        appliedConditionalAccessPolicies: null,
        riskEventTypes_v2: "unlikelyTravel",
        authenticationDetails: {},
      },
      {
        ...base,
        id: "d2",
        appliedConditionalAccessPolicies: [{ id: 7, result: { odd: true }, enforcedGrantControls: "Mfa" }],
      },
      {
        ...base,
        id: "d3",
        riskEventTypes: ["leakedCredentials", null],
        authenticationDetails: [{ authenticationStepDateTime: "yesterday", succeeded: "true" }],
      },
    ],
    new Date(),
  );
  const { rows } = await ctx.db.pool.query(
    `select (select json_agg(json_build_array(sign_in_id, policy_id, result, enforced_grant_controls)) from sign_in_ca_policies where tenant_id = 'tenant-drift') as ca,
            (select json_agg(json_build_array(sign_in_id, risk_event_type)) from sign_in_risk_events where tenant_id = 'tenant-drift') as risk,
            (select json_agg(json_build_array(sign_in_id, step_date_time, succeeded)) from sign_in_authentication_details where tenant_id = 'tenant-drift') as auth`,
  );
  assert.deepEqual(rows[0], {
    ca: [["d2", "7", null, null]],
    risk: [["d3", "leakedCredentials"]],
    auth: [["d3", null, true]],
  });
});

test("sessions of a migrated database run without JIT (0016: compiling cost more than the views' queries)", async () => {
  const { rows } = await ctx.db.pool.query<{ jit: string }>("select current_setting('jit') as jit");
  assert.equal(rows[0]?.jit, "off");
});
