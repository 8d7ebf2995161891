// The detections migration 0024 answers (docs/detections.md #3, #12, #16, #17, #18, #23 for privileged accounts,
// #26) and the watchlist they join: each view on the simulator's data against a count computed from raw, and on
// hand-made sequences shaped like Graph's payloads where a planted attack is found and a benign look-alike is not.

import assert from "node:assert/strict";
import { test } from "node:test";

import type { ValidEvent } from "../src/events/classify.ts";
import { withTransaction } from "../src/store/db.ts";
import { upsertDirectoryAudits } from "../src/store/signins.ts";
import { upsertPages, withSimulatedSignIns } from "./helpers/views-fixture.ts";

type Raw = Record<string, unknown>;

const ctx = withSimulatedSignIns({ days: 7 });

const MIN = 60_000;
const DAY = 1440;
const code = (e: Raw): number | null => {
  const c = (e.status as Raw | undefined)?.errorCode;
  return typeof c === "number" ? c : null;
};
const ms = (e: Raw): number => Date.parse(String(e.createdDateTime));

const INTERRUPTS = new Set([
  50140, 50074, 50076, 50079, 50072, 50125, 50058, 16000, 16001, 16003, 70043, 70044, 50097, 50089, 50199, 65001, 81010,
  700082,
]);

const signIn = (id: string, at: Date, patch: Raw = {}): Raw => ({
  id,
  createdDateTime: at.toISOString(),
  userPrincipalName: "ann@contoso.example",
  signInEventTypes: ["interactiveUser"],
  isInteractive: true,
  ipAddress: "198.51.100.7",
  appDisplayName: "Office 365",
  appId: "4765445b-32c6-49b0-83e6-1d93765276ca",
  conditionalAccessStatus: "success",
  authenticationRequirement: "multiFactorAuthentication",
  autonomousSystemNumber: 8075,
  status: { errorCode: 0 },
  location: { city: "London", state: "England", countryOrRegion: "GB" },
  ...patch,
});
const at = (minutes: number) => new Date(ctx.fx.from.getTime() + minutes * MIN);
const store = (tenant: string, events: Raw[]) => upsertPages(ctx.db.pool, tenant, events, new Date());
const watch = (tenant: string, kind: string, value: string, note: string | null = null) =>
  ctx.db.pool.query("insert into watchlist (tenant_id, kind, value, note) values ($1, $2, $3, $4)", [
    tenant,
    kind,
    value,
    note,
  ]);
const storeAudits = (tenant: string, events: Raw[]) =>
  withTransaction(ctx.db.pool, (c) =>
    upsertDirectoryAudits(
      c,
      tenant,
      "directoryAudits",
      events.map((raw): ValidEvent => ({ id: String(raw.id), createdDateTime: String(raw.activityDateTime), raw })),
      new Date(),
      "v1.0",
    ),
  );
const ids = async (sql: string, params: unknown[]) =>
  (await ctx.db.pool.query(sql, params)).rows.map((r) => String(r.id));

test("watchlist: kinds and networks are checked, signin_reader reads it and cannot write it", async () => {
  await assert.rejects(watch("t-w", "bogus", "x"), { code: "23514" });
  await assert.rejects(watch("t-w", "ip", "10.0.0.999"), { code: "22P02" });
  await assert.rejects(watch("t-w", "privileged", ""), { code: "23514" });
  await watch("t-w", "ip", "10.20.0.0/16", "head office");
  // The same UPN in another case is the same entry.
  await watch("t-w", "privileged", "Root@Contoso.example");
  await assert.rejects(watch("t-w", "privileged", "root@contoso.example"), { code: "23505" });
  const client = await ctx.db.pool.connect();
  try {
    await client.query("set role signin_reader");
    const { rows } = await client.query("select kind, network::text from watchlist where tenant_id = 't-w' order by 1");
    assert.deepEqual(rows, [
      { kind: "ip", network: "10.20.0.0/16" },
      { kind: "privileged", network: null },
    ]);
    await assert.rejects(client.query("insert into watchlist (tenant_id, kind, value) values ('t-w', 'vip', 'x')"), {
      code: "42501",
    });
    await assert.rejects(client.query("delete from watchlist"), { code: "42501" });
  } finally {
    await client.query("reset role");
    client.release();
  }
});

test("v_distributed_password_cracking: > 30 bad passwords of one user in a day from >= 3 places", async () => {
  const T = "t-crack";
  const places = [
    { city: "Lagos", state: "Lagos", countryOrRegion: "NG" },
    { city: "Hanoi", state: "Hanoi", countryOrRegion: "VN" },
    { city: "Lima", state: "Lima", countryOrRegion: "PE" },
  ];
  const fail = (user: string, i: number, where: number, minute: number, errorCode = 50126) =>
    signIn(`${user}-${i}`, at(DAY + minute), {
      userPrincipalName: `${user}@contoso.example`,
      ipAddress: `203.0.113.${where + 1}`,
      location: places[where],
      status: { errorCode },
    });
  await store(T, [
    // 31 failures (50126 and lockouts) from three cities: found.
    ...Array.from({ length: 31 }, (_, i) => fail("victim", i, i % 3, i * 10, i % 5 === 0 ? 50053 : 50126)),
    // 40 failures from two cities: not distributed.
    ...Array.from({ length: 40 }, (_, i) => fail("typo", i, i % 2, i * 10)),
    // 30 failures from three cities: not more than 30.
    ...Array.from({ length: 30 }, (_, i) => fail("thirty", i, i % 3, i * 10)),
    // 31 from three cities over two UTC days (16 + 15): below the threshold in each.
    ...Array.from({ length: 31 }, (_, i) => fail("split", i, i % 3, 600 + i * 40)),
    // MFA denials (500121) are not bad passwords.
    ...Array.from({ length: 35 }, (_, i) => fail("mfa", i, i % 3, i * 10, 500121)),
  ]);
  const { rows } = await ctx.db.pool.query(
    `select user_principal_name, failures::int, distinct_locations::int, distinct_ips::int, error_codes
     from v_distributed_password_cracking where tenant_id = $1 and day >= $2`,
    [T, ctx.fx.from],
  );
  assert.deepEqual(rows, [
    {
      user_principal_name: "victim@contoso.example",
      failures: 31,
      distinct_locations: 3,
      distinct_ips: 3,
      error_codes: [50053, 50126],
    },
  ]);

  // Simulator data, against a count from raw.
  const byUserDay = new Map<string, Raw[]>();
  for (const e of ctx.fx.events.filter((x) => [50126, 50053, 50055, 50056].includes(code(x) ?? 0))) {
    const key = `${e.userPrincipalName}|${new Date(ms(e)).toISOString().slice(0, 10)}`;
    byUserDay.set(key, [...(byUserDay.get(key) ?? []), e]);
  }
  const expected = [...byUserDay]
    .filter(([, list]) => {
      const loc = (e: Raw) =>
        JSON.stringify([(e.location as Raw)?.countryOrRegion, (e.location as Raw)?.state, (e.location as Raw)?.city]);
      return list.length > 30 && new Set(list.map(loc)).size >= 3;
    })
    .map(([key]) => key)
    .sort();
  const sim = await ctx.db.pool.query(
    `select user_principal_name || '|' || to_char(day at time zone 'UTC', 'YYYY-MM-DD') as key
     from v_distributed_password_cracking where tenant_id = $1`,
    [ctx.fx.tenantId],
  );
  assert.deepEqual(sim.rows.map((r) => r.key).sort(), expected);
});

test("v_success_then_failure_other_ip: a failure within 10 minutes of a success, same user and app, other /16", async () => {
  const T = "t-stf";
  const user = (u: string) => ({ userPrincipalName: `${u}@contoso.example` });
  const fail = (id: string, m: number, patch: Raw) => signIn(id, at(m), { status: { errorCode: 50126 }, ...patch });
  await store(T, [
    signIn("s-ann", at(0), user("ann")),
    fail("f-ann", 5, { ...user("ann"), ipAddress: "203.0.113.9" }),
    // Same /16 as the success: the user's own network.
    signIn("s-bob", at(0), user("bob")),
    fail("f-bob", 5, { ...user("bob"), ipAddress: "198.51.200.1" }),
    // 11 minutes after: too late.
    signIn("s-cy", at(0), user("cy")),
    fail("f-cy", 11, { ...user("cy"), ipAddress: "203.0.113.9" }),
    // An interrupt (KMSI) is no failure; nor is the other app's failure about the same app.
    signIn("s-dee", at(0), user("dee")),
    signIn("i-dee", at(3), { ...user("dee"), ipAddress: "203.0.113.9", status: { errorCode: 50140 } }),
    fail("f-dee", 4, { ...user("dee"), ipAddress: "203.0.113.9", appDisplayName: "Azure Portal" }),
    // Exchange Online is excluded, as in Sentinel.
    signIn("s-eve", at(0), { ...user("eve"), appDisplayName: "Office 365 Exchange Online" }),
    fail("f-eve", 2, { ...user("eve"), ipAddress: "203.0.113.9", appDisplayName: "Office 365 Exchange Online" }),
    // IPv6: the first two hextets decide.
    signIn("s-fay", at(0), { ...user("fay"), ipAddress: "2001:db8:1::1" }),
    fail("f-fay-same", 1, { ...user("fay"), ipAddress: "2001:db8:2::1" }),
    fail("f-fay-other", 2, { ...user("fay"), ipAddress: "2001:dc8::1" }),
  ]);
  await watch(T, "ip", "2001:dc8::/32", "partner VPN");
  const { rows } = await ctx.db.pool.query(
    `select id, success_id, success_ip_address, from_known_network from v_success_then_failure_other_ip
     where tenant_id = $1 and created_date_time >= $2 order by id`,
    [T, ctx.fx.from],
  );
  assert.deepEqual(rows, [
    { id: "f-ann", success_id: "s-ann", success_ip_address: "198.51.100.7", from_known_network: false },
    { id: "f-fay-other", success_id: "s-fay", success_ip_address: "2001:db8:1::1", from_known_network: true },
  ]);

  // Simulator data, against the rule applied to raw.
  const prefix = (ip: string) =>
    ip.includes(":") ? ip.toLowerCase().split(":").slice(0, 2).join(":") : ip.split(".").slice(0, 2).join(".");
  const events = ctx.fx.events;
  const isFailure = (e: Raw) => {
    const c = code(e);
    return c !== null && c !== 0 && !INTERRUPTS.has(c);
  };
  const expected = events
    .filter(
      (f) =>
        isFailure(f) &&
        f.userPrincipalName &&
        f.ipAddress &&
        (f.status as Raw).failureReason !== "Other" &&
        !["Office 365 Exchange Online", "Skype for Business Online"].includes(String(f.appDisplayName)) &&
        events.some(
          (s) =>
            code(s) === 0 &&
            s.userPrincipalName === f.userPrincipalName &&
            s.appDisplayName === f.appDisplayName &&
            typeof s.ipAddress === "string" &&
            s.ipAddress !== "" &&
            ms(s) >= ms(f) - 10 * MIN &&
            ms(s) < ms(f) &&
            prefix(s.ipAddress) !== prefix(String(f.ipAddress)),
        ),
    )
    .map((e) => String(e.id))
    .sort();
  const sim = await ids("select id from v_success_then_failure_other_ip where tenant_id = $1", [ctx.fx.tenantId]);
  assert.deepEqual(sim.sort(), expected);
});

/** "Add member to role" as Core Directory logs it: the role's name JSON-in-a-string on the user target. */
const roleAssignment = (id: string, upn: string, role: string, when: Date): Raw => ({
  id,
  category: "RoleManagement",
  correlationId: "8e1d2c3b-0000-4000-8000-000000000001",
  result: "success",
  resultReason: "",
  activityDisplayName: "Add member to role",
  activityDateTime: when.toISOString(),
  loggedByService: "Core Directory",
  operationType: "Assign",
  initiatedBy: { user: { id: "u0", userPrincipalName: "it@contoso.example", ipAddress: "198.51.100.1" }, app: null },
  targetResources: [
    {
      id: `id-${upn}`,
      displayName: upn,
      type: "User",
      userPrincipalName: upn,
      modifiedProperties: [
        { displayName: "Role.DisplayName", oldValue: null, newValue: JSON.stringify(role) },
        { displayName: "Role.TemplateId", oldValue: null, newValue: '"62e90394-69f5-4237-9190-012177145e10"' },
      ],
    },
  ],
  additionalDetails: [],
});

test("v_privileged_users and v_privileged_sign_ins_without_ca: watched and role-assigned admins, ungated sign-ins", async () => {
  const T = "t-priv";
  await watch(T, "privileged", "Admin@Contoso.example", "tier 0");
  await watch(T, "vip", "ceo@contoso.example");
  await storeAudits(T, [
    roleAssignment("ra-1", "Ops@contoso.example", "Global Administrator", at(0)),
    roleAssignment("ra-2", "reader@contoso.example", "Global Reader", at(0)),
  ]);
  const users = await ctx.db.pool.query(
    "select user_principal_name, sources, roles, spellings from v_privileged_users where tenant_id = $1 order by 1",
    [T],
  );
  assert.deepEqual(users.rows, [
    {
      user_principal_name: "admin@contoso.example",
      sources: ["privileged"],
      roles: null,
      spellings: ["Admin@Contoso.example", "admin@contoso.example"],
    },
    { user_principal_name: "ceo@contoso.example", sources: ["vip"], roles: null, spellings: ["ceo@contoso.example"] },
    {
      user_principal_name: "ops@contoso.example",
      sources: ["role"],
      roles: ["Global Administrator"],
      spellings: ["Ops@contoso.example", "ops@contoso.example"],
    },
  ]);
  const u = (upn: string) => ({ userPrincipalName: upn });
  await store(T, [
    // The admin as sign-ins spell it (lower case): not gated by CA → found.
    signIn("a-ungated", at(60), { ...u("admin@contoso.example"), conditionalAccessStatus: "notApplied" }),
    // Gated and MFA: fine.
    signIn("a-gated", at(61), u("admin@contoso.example")),
    // Single factor although CA applied → found.
    signIn("o-single", at(62), {
      ...u("Ops@contoso.example"),
      authenticationRequirement: "singleFactorAuthentication",
    }),
    // A failure is no sign-in to worry about here; nor is a non-privileged user's ungated success.
    signIn("a-failed", at(63), {
      ...u("admin@contoso.example"),
      conditionalAccessStatus: "notApplied",
      status: { errorCode: 50126 },
    }),
    signIn("r-ungated", at(64), { ...u("reader@contoso.example"), conditionalAccessStatus: "notApplied" }),
  ]);
  const { rows } = await ctx.db.pool.query(
    `select id, reasons, privileged_sources from v_privileged_sign_ins_without_ca
     where tenant_id = $1 and created_date_time >= $2 order by id`,
    [T, ctx.fx.from],
  );
  assert.deepEqual(rows, [
    { id: "a-ungated", reasons: ["not_gated_by_ca"], privileged_sources: ["privileged"] },
    { id: "o-single", reasons: ["single_factor"], privileged_sources: ["role"] },
  ]);
});

test("v_privileged_new_asn: a privileged user's success from an ASN unseen in 14 days", async () => {
  const T = "t-asn";
  await watch(T, "privileged", "root@contoso.example");
  const root = (id: string, m: number, patch: Raw = {}) =>
    signIn(id, at(m), { userPrincipalName: "root@contoso.example", ...patch });
  await store(T, [
    root("d0", 0),
    root("d1", DAY),
    root("d2", 2 * DAY),
    // A new network: found, with a baseline.
    root("new-asn", 3 * DAY, { autonomousSystemNumber: 64500, ipAddress: "203.0.113.5" }),
    // A failure from yet another ASN: successes only.
    root("failed", 3 * DAY + 5, { autonomousSystemNumber: 64501, status: { errorCode: 50126 } }),
    // The same new ASN the next day: seen since.
    root("again", 4 * DAY, { autonomousSystemNumber: 64500 }),
    // A non-privileged user from a new ASN: not listed.
    signIn("other", at(3 * DAY), { userPrincipalName: "bob@contoso.example", autonomousSystemNumber: 64502 }),
    // A v1.0 row has no ASN: nothing to compare.
    root("v1", 3 * DAY + 10, { autonomousSystemNumber: undefined }),
  ]);
  await watch(T, "ip", "203.0.113.0/24");
  const { rows } = await ctx.db.pool.query(
    `select id, autonomous_system_number, has_baseline, from_known_network from v_privileged_new_asn
     where tenant_id = $1 and created_date_time >= $2 order by created_date_time`,
    [T, ctx.fx.from],
  );
  assert.deepEqual(rows, [
    // The first success has nothing before it.
    { id: "d0", autonomous_system_number: 8075, has_baseline: false, from_known_network: false },
    { id: "new-asn", autonomous_system_number: 64500, has_baseline: true, from_known_network: true },
  ]);
});

test("v_service_principal_new_country: an SP attempt from a country without its success in 14 days", async () => {
  const T = "t-sp";
  const sp = (id: string, m: number, spId: string, country: string, errorCode = 0): Raw => ({
    id,
    createdDateTime: at(m).toISOString(),
    signInEventTypes: ["servicePrincipal"],
    isInteractive: false,
    servicePrincipalId: spId,
    servicePrincipalName: `app-${spId}`,
    appId: `appid-${spId}`,
    ipAddress: "20.190.128.10",
    resourceDisplayName: "Microsoft Graph",
    status: { errorCode },
    location: { city: "", countryOrRegion: country },
  });
  await store(T, [
    sp("a-us-0", 0, "sp-a", "US"),
    sp("b-de-0", 0, "sp-b", "DE"),
    sp("a-us-1", DAY, "sp-a", "US"),
    // New for sp-a and for the tenant: found.
    sp("a-ru", 2 * DAY, "sp-a", "RU", 7000215),
    // A wrong secret (50126... Sentinel's one exclusion) from China: not listed.
    sp("a-cn", 2 * DAY + 1, "sp-a", "CN", 50126),
    // New for sp-a, but sp-b succeeded from Germany: found, not new for the tenant.
    sp("a-de", 3 * DAY, "sp-a", "DE"),
    // sp-a from Germany again: known now.
    sp("a-de-2", 3 * DAY + 60, "sp-a", "DE"),
  ]);
  const { rows } = await ctx.db.pool.query(
    `select id, new_for_tenant from v_service_principal_new_country where tenant_id = $1 and created_date_time >= $2
     order by created_date_time`,
    [T, at(DAY)],
  );
  assert.deepEqual(rows, [
    { id: "a-ru", new_for_tenant: true },
    { id: "a-de", new_for_tenant: false },
  ]);
});

test("v_privileged_security_info_changes and v_break_glass_sign_ins", async () => {
  const T = "t-bg";
  await watch(T, "break_glass", "bg1@contoso.example", "sealed envelope");
  await watch(T, "vip", "ceo@contoso.example");
  const secInfo = (id: string, upn: string): Raw => ({
    id,
    category: "UserManagement",
    correlationId: "c0ffee00-0000-4000-8000-000000000001",
    result: "success",
    resultReason: "User registered Authenticator App with Notification and Code",
    activityDisplayName: "User registered security info",
    activityDateTime: at(30).toISOString(),
    loggedByService: "Authentication Methods",
    operationType: "Add",
    initiatedBy: { user: { id: "x", userPrincipalName: upn, ipAddress: "203.0.113.77" }, app: null },
    targetResources: [{ id: "x", type: "User", userPrincipalName: upn, modifiedProperties: [] }],
    additionalDetails: [],
  });
  await storeAudits(T, [secInfo("si-ceo", "ceo@contoso.example"), secInfo("si-bob", "bob@contoso.example")]);
  const changes = await ids(
    "select id from v_privileged_security_info_changes where tenant_id = $1 and activity_date_time >= $2",
    [T, ctx.fx.from],
  );
  assert.deepEqual(changes, ["si-ceo"]);

  await store(T, [
    signIn("bg-ok", at(40), { userPrincipalName: "bg1@contoso.example" }),
    signIn("bg-fail", at(41), { userPrincipalName: "bg1@contoso.example", status: { errorCode: 50126 } }),
    signIn("not-bg", at(42), { userPrincipalName: "bg2@contoso.example" }),
  ]);
  const { rows } = await ctx.db.pool.query(
    `select id, outcome, note from v_break_glass_sign_ins where tenant_id = $1 and created_date_time >= $2 order by id`,
    [T, ctx.fx.from],
  );
  assert.deepEqual(rows, [
    { id: "bg-fail", outcome: "bad_credentials", note: "sealed envelope" },
    { id: "bg-ok", outcome: "success", note: "sealed envelope" },
  ]);
});

// The candidate tables behind v_success_after_failures and v_new_country_attempts (0024) against 0022's definitions,
// computed directly on sign_ins: after the simulator's load with its re-publications, after sign-ins arriving out of
// order (a backfill stores the older day last), and after re-publications that change outcomes and countries.
const DIRECT_SUCCESS_AFTER_FAILURES = `
select s.id from sign_ins s
where s.tenant_id = $1 and s.outcome = 'success' and s.user_principal_name <> ''
  and (select count(*) from sign_ins g where g.tenant_id = s.tenant_id and g.user_principal_name = s.user_principal_name
       and g.outcome in ('bad_credentials', 'locked') and g.created_date_time >= s.created_date_time - interval '20 minutes'
       and g.created_date_time < s.created_date_time) >= 5
order by 1`;
const DIRECT_NEW_COUNTRY = `
select s.id from sign_ins s
where s.tenant_id = $1 and signin_password_verified(s.status_error_code) and s.user_principal_name <> ''
  and s.location_country_or_region <> ''
  and not exists (select 1 from sign_ins b where b.tenant_id = s.tenant_id and b.user_principal_name = s.user_principal_name
    and b.location_country_or_region = s.location_country_or_region and b.outcome = 'success'
    and b.created_date_time >= s.created_date_time - interval '14 days' and b.created_date_time < s.created_date_time)
order by 1`;

async function assertCandidatesMatch(tenant: string): Promise<void> {
  const view = (v: string) => ids(`select id from ${v} where tenant_id = $1 order by 1`, [tenant]);
  assert.deepEqual(await view("v_success_after_failures"), await ids(DIRECT_SUCCESS_AFTER_FAILURES, [tenant]));
  assert.deepEqual(await view("v_new_country_attempts"), await ids(DIRECT_NEW_COUNTRY, [tenant]));
}

test("the candidate tables give 0022's rows: simulator load, out-of-order arrival, re-publications", async () => {
  await assertCandidatesMatch(ctx.fx.tenantId);
  assert.ok((await ids("select id from v_new_country_attempts where tenant_id = $1", [ctx.fx.tenantId])).length > 0);

  // Out of order: the later days first, then the earlier ones (their successes become the later rows' baseline,
  // their failures precede later successes).
  const T = "t-order";
  const events = ctx.fx.events.filter((e) => ms(e) < ctx.fx.from.getTime() + 3 * DAY * MIN);
  const late = events.filter((e) => ms(e) >= ctx.fx.from.getTime() + 1.5 * DAY * MIN);
  const early = events.filter((e) => ms(e) < ctx.fx.from.getTime() + 1.5 * DAY * MIN);
  // A brute force split across the two halves: 3 failures stored late, 2 early, the success stored late.
  const cut = ctx.fx.from.getTime() + 1.5 * DAY * MIN;
  const bf = (id: string, offsetMin: number, errorCode: number) =>
    signIn(id, new Date(cut + offsetMin * MIN), { userPrincipalName: "split@contoso.example", status: { errorCode } });
  await store(T, [...late, bf("bf-3", 1, 50126), bf("bf-4", 2, 50126), bf("bf-5", 3, 50053), bf("bf-ok", 4, 0)]);
  await store(T, [...early, bf("bf-1", -3, 50126), bf("bf-2", -2, 50126)]);
  await assertCandidatesMatch(T);
  assert.ok((await ids("select id from v_success_after_failures where tenant_id = $1", [T])).includes("bf-ok"));

  // Re-publications that change what matters: successes become failures (baselines vanish), failures become
  // successes, countries change.
  const changed = late.slice(0, 300).map((e, i) => {
    if (i % 3 === 0) {
      return { ...e, status: { errorCode: code(e) === 0 ? 50126 : 0 } };
    }
    if (i % 3 === 1) {
      return { ...e, location: { ...(e.location as Raw), countryOrRegion: "NZ" } };
    }
    return { ...e, appDisplayName: "Changed" };
  });
  await store(T, [...changed, bf("bf-2", -2, 0)]);
  await assertCandidatesMatch(T);
  assert.ok(!(await ids("select id from v_success_after_failures where tenant_id = $1", [T])).includes("bf-ok"));
});

test("signin_password_spray's one-pass window count agrees with a count per attempt (repeats, ties, edges)", async () => {
  const T = "t-sweep";
  // A deterministic mix: 3 IPs, 12 users, failures on whole and half minutes (ties at window edges), repeats.
  let seed = 7;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const base = at(DAY);
  const events: Raw[] = [];
  for (let i = 0; i < 400; i++) {
    events.push(
      signIn(`sw${i}`, new Date(base.getTime() + Math.floor(rnd() * 360) * 30_000), {
        userPrincipalName: `u${Math.floor(rnd() * 12)}@x.example`,
        ipAddress: `192.0.2.${Math.floor(rnd() * 3)}`,
        status: { errorCode: rnd() < 0.8 ? 50126 : 50053 },
      }),
    );
  }
  await store(T, events);
  const from = new Date(base.getTime() + 30 * MIN);
  const to = new Date(base.getTime() + 150 * MIN);
  for (const [minUsers, windowMin] of [
    [5, 20],
    [8, 20],
    [4, 5],
  ] as const) {
    const w = windowMin * MIN;
    // Per attempt in [from, to): distinct users of its IP in [t, t + w); qualifying starts merge when <= w apart.
    const expected: string[] = [];
    for (const ip of [...new Set(events.map((e) => String(e.ipAddress)))]) {
      const list = events.filter((e) => e.ipAddress === ip).sort((a, b) => ms(a) - ms(b));
      const starts = list
        .filter((f) => ms(f) >= from.getTime() && ms(f) < to.getTime())
        .filter(
          (f) =>
            new Set(list.filter((g) => ms(g) >= ms(f) && ms(g) < ms(f) + w).map((g) => g.userPrincipalName)).size >=
            minUsers,
        )
        .map(ms);
      let burst: number[] = [];
      const flush = () => {
        if (burst.length > 0) {
          const b0 = burst[0] ?? 0;
          const b1 = (burst[burst.length - 1] ?? 0) + w;
          const users = new Set(list.filter((g) => ms(g) >= b0 && ms(g) < b1).map((g) => g.userPrincipalName));
          expected.push(`${ip} ${new Date(b0).toISOString()} ${new Date(b1).toISOString()} ${users.size}`);
        }
        burst = [];
      };
      for (const t of starts) {
        if (burst.length > 0 && t > (burst[burst.length - 1] ?? 0) + w) {
          flush();
        }
        burst.push(t);
      }
      flush();
    }
    const { rows } = await ctx.db.pool.query(
      `select ip_address, burst_start, burst_end, failed_users::int from signin_password_spray($1, $2, $3, $4)
       where tenant_id = $5`,
      [from, to, minUsers, `${windowMin} minutes`, T],
    );
    const got = rows.map(
      (r) => `${r.ip_address} ${r.burst_start.toISOString()} ${r.burst_end.toISOString()} ${r.failed_users}`,
    );
    assert.ok(expected.length > 0, `bursts at ${minUsers} users / ${windowMin} min`);
    assert.deepEqual(got.sort(), expected.sort(), `${minUsers} users / ${windowMin} min`);
  }
});
