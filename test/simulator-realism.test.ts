// What the simulator's tenant looks like on the points the watchlist and audit views depend on (issue 13): a few
// dozen role holders, a small stable set of autonomous systems per user tied to their addresses, and consent grants,
// security-info changes and role assignments at a tenant's rate, not a share of every user's audit volume.

import assert from "node:assert/strict";
import { test } from "node:test";

import { HOSTING_NETWORKS } from "../src/simulator/catalog.ts";
import { generateAuditHour, TENANT_RATES } from "../src/simulator/audits.ts";
import { generateHour, HOUR_MS } from "../src/simulator/generate.ts";
import { PRIVILEGED_PER_1000_USERS, tenantModel } from "../src/simulator/tenant.ts";

type Raw = Record<string, unknown>;

const TENANT = "realism-tenant";
const USERS = 1000;
const cfg = { seed: 5, users: USERS, signInsPerUserPerDay: 1.75, arrivalLatency: false as const, republishRate: 0 };
// Fixed weekdays and weekends (Monday 2026-03-02 back 14 days): nothing depends on when the test runs.
const END_HOUR = Date.parse("2026-03-02T00:00:00Z") / HOUR_MS;
const DAYS = 14;

const hours = Array.from({ length: DAYS * 24 }, (_, i) => END_HOUR - DAYS * 24 + i);
const signIns: Raw[] = hours.flatMap((h) => generateHour(cfg, TENANT, h).map((e) => e.obj));
const audits: Raw[] = hours.flatMap((h) => generateAuditHour(cfg, TENANT, h).map((e) => e.obj));
const model = tenantModel(cfg.seed, TENANT, USERS);
const privileged = new Set(model.privilegedUsers.map((u) => u.upn));

const perDay = (rate: { base: number; per1000Users: number }): number => rate.base + (rate.per1000Users * USERS) / 1000;
const ofActivity = (name: string): Raw[] => audits.filter((a) => a.activityDisplayName === name);
const targetUpn = (a: Raw): string => {
  const upn = (a.targetResources as Raw[])[0]?.userPrincipalName;
  return typeof upn === "string" ? upn : "";
};
const successes = signIns.filter((e) => typeof e.userPrincipalName === "string" && (e.status as Raw).errorCode === 0);

test("a few dozen role holders, all members, and role assignments only to them, some again and again", () => {
  assert.equal(model.privilegedUsers.length, (USERS * PRIVILEGED_PER_1000_USERS) / 1000);
  assert.equal(tenantModel(cfg.seed, TENANT, 5000).privilegedUsers.length, 30);
  assert.equal(tenantModel(cfg.seed, TENANT, 20).privilegedUsers.length, 3);
  assert.ok(model.privilegedUsers.every((u) => !u.guest && u.privileged));
  assert.equal(model.users.filter((u) => u.privileged).length, model.privilegedUsers.length);

  const assignments = ofActivity("Add member to role");
  const expected = perDay(TENANT_RATES.roleAssignments) * DAYS;
  assert.ok(assignments.length > expected * 0.5 && assignments.length < expected * 1.5, `${assignments.length}`);
  assert.ok(assignments.every((a) => privileged.has(targetUpn(a))));
  const perTarget = new Map<string, number>();
  for (const a of assignments) {
    perTarget.set(targetUpn(a), (perTarget.get(targetUpn(a)) ?? 0) + 1);
  }
  assert.ok(Math.max(...perTarget.values()) >= 3, "some role holders are assigned repeatedly");
  // A role holder's role is the same each time.
  const roleOf = new Map<string, string>();
  for (const a of assignments) {
    const role = String((a.targetResources as Raw[])[1]?.displayName);
    assert.equal(roleOf.get(targetUpn(a)) ?? role, role);
    roleOf.set(targetUpn(a), role);
  }
  // The changes admins make (user updates, resets) are initiated by role holders.
  const byAdmins = audits.filter((a) => a.activityDisplayName === "Reset password");
  assert.ok(byAdmins.length > 0);
  assert.ok(byAdmins.every((a) => privileged.has(String(((a.initiatedBy as Raw).user as Raw).userPrincipalName))));
});

test("consent grants and security-info changes come at a tenant's rate (a handful a day), not hundreds", () => {
  for (const [name, rate] of [
    ["Consent to application", TENANT_RATES.consentGrants],
    ["User registered security info", TENANT_RATES.securityInfo],
  ] as const) {
    const n = ofActivity(name).length;
    const expected = perDay(rate) * DAYS;
    assert.ok(n > expected * 0.5 && n < expected * 1.5, `${name}: ${n} in ${DAYS} days, expected ~${expected}`);
    assert.ok(n < audits.length / 100, `${name}: ${n} of ${audits.length} audits`);
  }
});

test("each address belongs to one autonomous system, and each user signs in from a few of them", () => {
  const asnOfAddress = new Map<string, unknown>();
  for (const e of signIns) {
    const ip = String(e.ipAddress);
    if (ip === "" || ip.endsWith(".XXX")) {
      continue;
    }
    assert.equal(asnOfAddress.get(ip) ?? e.autonomousSystemNumber, e.autonomousSystemNumber, ip);
    asnOfAddress.set(ip, e.autonomousSystemNumber);
    assert.ok(Number.isInteger(e.autonomousSystemNumber) && Number(e.autonomousSystemNumber) > 0);
  }
  // Hosting networks' addresses carry the hosting provider's ASN.
  for (const [ip, asn] of asnOfAddress) {
    const hosting = HOSTING_NETWORKS.find((n) => ip.startsWith(`${n.prefix}.`));
    if (hosting) {
      assert.equal(asn, hosting.asn);
    }
  }
  const asnsOfUser = new Map<string, Set<unknown>>();
  for (const e of successes) {
    const set = asnsOfUser.get(String(e.userPrincipalName)) ?? new Set();
    set.add(e.autonomousSystemNumber);
    asnsOfUser.set(String(e.userPrincipalName), set);
  }
  const sizes = [...asnsOfUser.values()].map((s) => s.size).sort((a, b) => a - b);
  const median = sizes[Math.floor(sizes.length / 2)] ?? 0;
  assert.ok(median >= 2 && median <= 4, `median ASNs per user over ${DAYS} days: ${median}`);
  assert.ok((sizes[sizes.length - 1] ?? 0) <= 8, `at most a handful: ${sizes[sizes.length - 1]}`);
});

test("a role holder's success from a hosting provider's network is a new ASN for them", () => {
  const hostingAsns = new Set(HOSTING_NETWORKS.map((n) => n.asn));
  const fromHosting = successes.filter(
    (e) => privileged.has(String(e.userPrincipalName)) && hostingAsns.has(Number(e.autonomousSystemNumber)),
  );
  assert.ok(fromHosting.length > 0, "the scenario happens within two weeks");
  const first = fromHosting[0] as Raw;
  const before = successes.filter(
    (e) =>
      e.userPrincipalName === first.userPrincipalName &&
      Date.parse(String(e.createdDateTime)) < Date.parse(String(first.createdDateTime)),
  );
  assert.ok(before.length > 0, "the user has a baseline");
  assert.ok(before.every((e) => e.autonomousSystemNumber !== first.autonomousSystemNumber));
});
