// The SOC views of migration 0022 (docs/detections.md): on simulator data (each checked against a count computed
// independently from raw) and on hand-made sequences that pin each rule's edges (windows, thresholds, baselines).

import assert from "node:assert/strict";
import { test } from "node:test";

import { upsertPages, withSimulatedSignIns } from "./helpers/views-fixture.ts";

type Raw = Record<string, unknown>;

const ctx = withSimulatedSignIns();

const MIN = 60_000;
const code = (e: Raw): number | null => {
  const c = (e.status as Raw | undefined)?.errorCode;
  return typeof c === "number" ? c : null;
};
const ms = (e: Raw): number => Date.parse(String(e.createdDateTime));
const range = () => [ctx.fx.from, ctx.fx.to];

/** A user sign-in of a hand-made sequence (interactive unless said otherwise). */
const signIn = (id: string, at: Date, patch: Raw = {}): Raw => ({
  id,
  createdDateTime: at.toISOString(),
  userPrincipalName: "ann@contoso.example",
  signInEventTypes: ["interactiveUser"],
  isInteractive: true,
  ipAddress: "198.51.100.7",
  appDisplayName: "Office 365",
  status: { errorCode: 0 },
  location: { city: "London", countryOrRegion: "GB" },
  ...patch,
});
const at = (minutes: number) => new Date(ctx.fx.from.getTime() + 24 * 60 * MIN + minutes * MIN);
const store = (tenant: string, events: Raw[]) => upsertPages(ctx.db.pool, tenant, events, new Date());

test("the simulator plays the scenarios these views look for", () => {
  assert.ok(ctx.fx.events.some((e) => e.authenticationProtocol === "deviceCode"));
  assert.ok(ctx.fx.events.some((e) => e.originalTransferMethod === "deviceCodeFlow" && e.isInteractive === false));
  assert.ok(ctx.fx.events.filter((e) => code(e) === 500121).length > 10);
  assert.ok(ctx.fx.events.some((e) => code(e) === 50057) && ctx.fx.events.some((e) => code(e) === 50053));
});

test("v_disabled_locked_sign_ins lists exactly the 50057 and 50053 sign-ins", async () => {
  const { rows } = await ctx.db.pool.query(
    `select id, outcome from v_disabled_locked_sign_ins where tenant_id = $1 and created_date_time >= $2
       and created_date_time < $3`,
    [ctx.fx.tenantId, ...range()],
  );
  const expected = ctx.fx.events.filter((e) => code(e) === 50057 || code(e) === 50053);
  assert.deepEqual(rows.map((r) => r.id).sort(), expected.map((e) => String(e.id)).sort());
  assert.deepEqual([...new Set(rows.map((r) => r.outcome))].sort(), ["disabled", "locked"]);
});

test("v_device_code_sign_ins lists device-code sign-ins and their token refreshes, first one per user flagged", async () => {
  const { rows } = await ctx.db.pool.query(
    `select id, user_principal_name, authentication_protocol, sign_in_event_type, first_for_user
     from v_device_code_sign_ins where tenant_id = $1 and created_date_time >= $2 and created_date_time < $3
     order by created_date_time`,
    [ctx.fx.tenantId, ...range()],
  );
  const expected = ctx.fx.events.filter(
    (e) => e.authenticationProtocol === "deviceCode" || e.originalTransferMethod === "deviceCodeFlow",
  );
  assert.deepEqual(rows.map((r) => r.id).sort(), expected.map((e) => String(e.id)).sort());
  assert.ok(rows.some((r) => r.sign_in_event_type === "nonInteractiveUser"));
  const firsts = rows.filter((r) => r.first_for_user);
  const users = new Set(
    rows.filter((r) => r.authentication_protocol === "deviceCode").map((r) => r.user_principal_name),
  );
  assert.equal(firsts.length, users.size);
});

test("v_mfa_denials counts 500121 per user and 10 minutes by reason, and the success that follows fatigue", async () => {
  const { rows } = await ctx.db.pool.query(
    `select user_principal_name, ten_minutes, denials::int, declined::int, no_response::int, fraud::int,
       other_reason::int, success_after_at
     from v_mfa_denials where tenant_id = $1 and ten_minutes >= $2 and ten_minutes < $3`,
    [ctx.fx.tenantId, ...range()],
  );
  const expected = new Map<string, number>();
  for (const e of ctx.fx.events.filter((x) => code(x) === 500121)) {
    const key = `${e.userPrincipalName}|${Math.floor(ms(e) / (10 * MIN)) * 10 * MIN}`;
    expected.set(key, (expected.get(key) ?? 0) + 1);
  }
  assert.deepEqual(
    new Map(rows.map((r) => [`${r.user_principal_name}|${r.ten_minutes.getTime()}`, r.denials])),
    expected,
  );
  for (const r of rows) {
    assert.equal(r.declined + r.no_response + r.fraud + r.other_reason, r.denials);
  }
  assert.ok(rows.some((r) => r.no_response > 0) && rows.some((r) => r.declined > 0));

  // Fatigue: 8 unanswered prompts then an approval within 10 minutes; a success 11 minutes later is not "after".
  const T = "t-fatigue";
  const prompts = Array.from({ length: 8 }, (_, i) =>
    signIn(`p${i}`, at(i * 0.5), {
      status: { errorCode: 500121, additionalDetails: "MFA denied; user did not respond to mobile app notification" },
    }),
  );
  prompts.push(
    signIn("fraud", at(4.5), {
      status: { errorCode: 500121, additionalDetails: "MFA denied; Phone App Reported Fraud" },
    }),
  );
  await store(T, [...prompts, signIn("ok", at(8)), signIn("late", at(30))]);
  const fatigue = await ctx.db.pool.query(
    `select denials::int, no_response::int, fraud::int, success_after_at from v_mfa_denials where tenant_id = $1`,
    [T],
  );
  assert.deepEqual(fatigue.rows, [{ denials: 9, no_response: 8, fraud: 1, success_after_at: at(8) }]);
});

test("signin_password_spray: sliding 20-minute windows across an hour boundary, failed > successful users per IP", async () => {
  const T = "t-spray";
  // 198.51.100.1 sprays 6 users from 10:52 to 11:08 (two UTC hours, 3 users each); 198.51.100.2 (a NAT) fails 6
  // users but signs in 8 others; 198.51.100.3 fails 4 users only.
  const base = new Date(Date.UTC(2026, 2, 4, 10, 52));
  const t = (m: number) => new Date(base.getTime() + m * MIN);
  const bad = { status: { errorCode: 50126 } };
  const events: Raw[] = [];
  for (let i = 0; i < 6; i++) {
    events.push(signIn(`a${i}`, t(i * 3), { ...bad, ipAddress: "198.51.100.1", userPrincipalName: `u${i}@x.example` }));
    events.push(signIn(`b${i}`, t(i * 3), { ...bad, ipAddress: "198.51.100.2", userPrincipalName: `u${i}@x.example` }));
  }
  for (let i = 0; i < 8; i++) {
    events.push(signIn(`n${i}`, t(30 + i), { ipAddress: "198.51.100.2", userPrincipalName: `v${i}@x.example` }));
  }
  for (let i = 0; i < 4; i++) {
    events.push(signIn(`c${i}`, t(i), { ...bad, ipAddress: "198.51.100.3", userPrincipalName: `u${i}@x.example` }));
  }
  await store(T, events);
  const { rows } = await ctx.db.pool.query(
    `select ip_address, burst_start, burst_end, failed_users::int, failures::int, successful_users::int, error_codes
     from signin_password_spray($1, $2) where tenant_id = $3`,
    [t(-60), t(120), T],
  );
  assert.deepEqual(rows, [
    {
      ip_address: "198.51.100.1",
      burst_start: t(0),
      // Windows starting at 10:52 (6 users) and 10:55 (5 users) qualify; the burst ends 20 minutes after the last.
      burst_end: t(23),
      failed_users: 6,
      failures: 6,
      successful_users: 0,
      error_codes: [50126],
    },
  ]);
  // The old hourly view misses it (3 users per hour, threshold 10); a higher threshold drops it too.
  const old = await ctx.db.pool.query("select * from v_password_spray_candidates where tenant_id = $1", [T]);
  assert.equal(old.rows.length, 0);
  const strict = await ctx.db.pool.query("select * from signin_password_spray($1, $2, 7) where tenant_id = $3", [
    t(-60),
    t(120),
    T,
  ]);
  assert.equal(strict.rows.length, 0);
});

test("signin_password_spray finds the simulator's sprays; signin_distributed_spray a botnet spray", async () => {
  // Independently: IPs with >= 5 distinct users failing (bad credentials, lockout, disabled) within 20 minutes of a
  // failure, and more failed users than users whose password was right from that IP.
  const failedCodes = new Set([50126, 50056, 50034, 50064, 50053, 50057]);
  const verified = new Set([0, 500121, 50055, 50144, 50158, 50005, 50131, 53000, 53001, 53002, 53003, 53004]);
  for (const c of [50074, 50076, 50079, 50072, 50140]) {
    verified.add(c);
  }
  const byIp = new Map<string, Raw[]>();
  for (const e of ctx.fx.events) {
    if (typeof e.ipAddress === "string" && e.ipAddress !== "") {
      byIp.set(e.ipAddress, [...(byIp.get(e.ipAddress) ?? []), e]);
    }
  }
  const expectedIps: string[] = [];
  for (const [ip, list] of byIp) {
    const failures = list.filter((e) => failedCodes.has(code(e) ?? 0));
    const burst = failures.some(
      (f) =>
        new Set(failures.filter((g) => ms(g) >= ms(f) && ms(g) < ms(f) + 20 * MIN).map((g) => g.userPrincipalName))
          .size >= 5,
    );
    const ok = new Set(list.filter((e) => verified.has(code(e) ?? -1)).map((e) => e.userPrincipalName)).size;
    if (burst && new Set(failures.map((f) => f.userPrincipalName)).size > ok) {
      expectedIps.push(ip);
    }
  }
  const { rows } = await ctx.db.pool.query(
    "select distinct ip_address from signin_password_spray($1, $2) where tenant_id = $3",
    [...range(), ctx.fx.tenantId],
  );
  assert.deepEqual(rows.map((r) => r.ip_address).sort(), expectedIps.sort());
  assert.ok(expectedIps.length > 0, "the simulator sprays");

  const T = "t-botnet";
  const start = new Date(Date.UTC(2026, 2, 5, 3, 0));
  const events = Array.from({ length: 20 }, (_, i) =>
    signIn(`d${i}`, new Date(start.getTime() + i * MIN), {
      status: { errorCode: 50126 },
      ipAddress: `203.0.113.${i % 7}`,
      userPrincipalName: `w${i}@x.example`,
    }),
  );
  await store(T, events);
  const botnet = await ctx.db.pool.query(
    `select window_start, failed_users::int, distinct_ips::int, dominant_error_code, dominant_share::float
     from signin_distributed_spray($1, $2) where tenant_id = $3 order by window_start`,
    [new Date(start.getTime() - 60 * MIN), new Date(start.getTime() + 60 * MIN), T],
  );
  assert.ok(botnet.rows.length >= 1);
  assert.ok(botnet.rows.some((r) => r.failed_users === 20 && r.distinct_ips === 7));
  assert.ok(botnet.rows.every((r) => r.dominant_error_code === 50126 && r.dominant_share === 1));
  // Per IP at most 3 users: no per-IP spray.
  const perIp = await ctx.db.pool.query("select * from signin_password_spray($1, $2) where tenant_id = $3", [
    new Date(start.getTime() - 60 * MIN),
    new Date(start.getTime() + 60 * MIN),
    T,
  ]);
  assert.equal(perIp.rows.length, 0);
});

test("v_new_country_attempts: a correct password (or a block after it) from a country without success in 14 days", async () => {
  const T = "t-country";
  const fr = { location: { city: "Paris", countryOrRegion: "FR" } };
  await store(T, [
    signIn("gb-1", at(0)),
    // Day 2: MFA required from France (the password was right): an attempt; a wrong password from France is not.
    signIn("fr-interrupt", at(2 * 1440), { ...fr, status: { errorCode: 50074 } }),
    signIn("fr-bad", at(2 * 1440 + 1), { ...fr, status: { errorCode: 50126 } }),
    // Blocked by Conditional Access after the password: an attempt.
    signIn("fr-blocked", at(2 * 1440 + 2), { ...fr, status: { errorCode: 53003 } }),
    signIn("fr-ok", at(2 * 1440 + 3), fr),
    // After a success from France, France is known; Great Britain stays known.
    signIn("fr-later", at(2 * 1440 + 60), fr),
    signIn("gb-2", at(3 * 1440)),
  ]);
  const { rows } = await ctx.db.pool.query(
    `select id, outcome, has_baseline from v_new_country_attempts where tenant_id = $1 order by created_date_time`,
    [T],
  );
  assert.deepEqual(rows, [
    { id: "gb-1", outcome: "success", has_baseline: false },
    { id: "fr-interrupt", outcome: "interrupt", has_baseline: true },
    { id: "fr-blocked", outcome: "correct_password_blocked", has_baseline: true },
    { id: "fr-ok", outcome: "success", has_baseline: true },
  ]);
  // A country last seen 15 days before is new again.
  await store(T, [signIn("gb-3", at(18 * 1440 + 1))]);
  const again = await ctx.db.pool.query(`select id from v_new_country_attempts where tenant_id = $1 and id = 'gb-3'`, [
    T,
  ]);
  assert.equal(again.rows.length, 1);
  // On the simulator's data it answers for 24 h quickly, with rows.
  const day = await ctx.db.pool.query(
    "select count(*)::int as n from v_new_country_attempts where tenant_id = $1 and created_date_time >= $2",
    [ctx.fx.tenantId, new Date(ctx.fx.to.getTime() - 24 * 60 * MIN)],
  );
  assert.ok(day.rows[0].n > 0);
});

test("v_success_after_failures: a success after at least 5 bad passwords of the same user in 20 minutes", async () => {
  const T = "t-brute";
  const bad = (id: string, m: number, ip = "192.0.2.9") =>
    signIn(id, at(m), { status: { errorCode: 50126 }, ipAddress: ip });
  await store(T, [
    ...[0, 1, 2, 3].map((m) => bad(`f${m}`, m)),
    // An interrupt is no failure: 4 failures only before this success.
    signIn("kmsi", at(4), { status: { errorCode: 50140 } }),
    signIn("early", at(5)),
    bad("f6", 6, "192.0.2.10"),
    signIn("hit", at(7), { ipAddress: "192.0.2.9" }),
    // 25 minutes after the first failures: only f6 is within 20 minutes.
    signIn("later", at(25)),
  ]);
  const { rows } = await ctx.db.pool.query(
    `select id, failures_before::int, failure_ips::int, success_from_failure_ip from v_success_after_failures
     where tenant_id = $1 order by created_date_time`,
    [T],
  );
  assert.deepEqual(rows, [{ id: "hit", failures_before: 5, failure_ips: 2, success_from_failure_ip: true }]);

  // The simulator's brute-force scenario, against an independent count.
  const byUser = new Map<string, Raw[]>();
  for (const e of ctx.fx.events) {
    const list = byUser.get(String(e.userPrincipalName)) ?? [];
    list.push(e);
    byUser.set(String(e.userPrincipalName), list);
  }
  const guess = new Set([50126, 50056, 50034, 50064, 50053]);
  const expected: string[] = [];
  for (const list of byUser.values()) {
    for (const s of list.filter((e) => code(e) === 0 && e.userPrincipalName)) {
      const n = list.filter((e) => guess.has(code(e) ?? 0) && ms(e) < ms(s) && ms(e) >= ms(s) - 20 * MIN).length;
      if (n >= 5) {
        expected.push(String(s.id));
      }
    }
  }
  const sim = await ctx.db.pool.query(
    `select id from v_success_after_failures where tenant_id = $1 and created_date_time >= $2 and created_date_time < $3`,
    [ctx.fx.tenantId, ...range()],
  );
  assert.deepEqual(sim.rows.map((r) => r.id).sort(), expected.sort());
  assert.ok(expected.length > 0, "the simulator plays a brute force that succeeds");
});
