// The directory-audit views of migration 0023 (docs/detections.md #19, #21–#25): on simulator audits against counts
// from raw, and on hand-made events that pin each field (role name, key set difference, policy state, new inviter).

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import type { ValidEvent } from "../src/events/classify.ts";
import { generateAuditHour } from "../src/simulator/audits.ts";
import { HOUR_MS } from "../src/simulator/generate.ts";
import { withTransaction } from "../src/store/db.ts";
import { upsertDirectoryAudits } from "../src/store/signins.ts";
import { createTestDatabase, type TestDatabase } from "./helpers/db.ts";

type Raw = Record<string, unknown>;

const TENANT = "11111111-2222-4333-8444-555555555555";
const END = Date.parse("2026-03-09T00:00:00Z");
let db: TestDatabase;
let audits: Raw[] = [];

const store = (tenant: string, events: Raw[]) =>
  withTransaction(db.pool, (c) =>
    upsertDirectoryAudits(
      c,
      tenant,
      "directoryAudits",
      events.map((raw): ValidEvent => ({ id: String(raw.id), createdDateTime: String(raw.activityDateTime), raw })),
      new Date(),
      "v1.0",
    ),
  );

before(async () => {
  db = await createTestDatabase();
  const cfg = { seed: 42, users: 150, signInsPerUserPerDay: 1.5, arrivalLatency: false as const, republishRate: 0 };
  for (let hour = END / HOUR_MS - 7 * 24; hour < END / HOUR_MS; hour++) {
    audits.push(...generateAuditHour(cfg, TENANT, hour).map((e) => e.obj));
  }
  audits = [...new Map(audits.map((a) => [String(a.id), a])).values()];
  await store(TENANT, audits);
});
after(() => db.drop());

const ofActivity = (names: string[]) => audits.filter((a) => names.includes(String(a.activityDisplayName).trim()));
const ids = async (view: string, tenant = TENANT) =>
  (await db.pool.query(`select id from ${view} where tenant_id = $1 order by id`, [tenant])).rows.map((r) => r.id);
const sortedIds = (events: Raw[]) => events.map((e) => String(e.id)).sort();

test("each audit view lists exactly its activities from the simulator's week", async () => {
  assert.ok(audits.length > 1000, `audits: ${audits.length}`);
  assert.deepEqual(await ids("v_role_assignments"), sortedIds(ofActivity(["Add member to role"])));
  assert.deepEqual(await ids("v_consent_grants"), sortedIds(ofActivity(["Consent to application"])));
  assert.deepEqual(
    await ids("v_app_credential_changes"),
    sortedIds(ofActivity(["Update application – Certificates and secrets management"])),
  );
  assert.deepEqual(await ids("v_ca_policy_changes"), sortedIds(ofActivity(["Update conditional access policy"])));
  assert.deepEqual(
    await ids("v_security_info_changes"),
    sortedIds(audits.filter((a) => /security info/i.test(String(a.activityDisplayName)))),
  );
  for (const view of ["v_role_assignments", "v_consent_grants", "v_app_credential_changes", "v_ca_policy_changes"]) {
    assert.ok((await ids(view)).length > 0, `${view} has simulator rows`);
  }
  const roles = await db.pool.query(
    "select role_display_name, target_user_principal_name, outside_pim from v_role_assignments where tenant_id = $1",
    [TENANT],
  );
  assert.ok(roles.rows.every((r) => typeof r.role_display_name === "string" && r.role_display_name !== ""));
  assert.ok(roles.rows.every((r) => typeof r.target_user_principal_name === "string" && r.outside_pim === true));
  const keys = await db.pool.query("select added_key_ids from v_app_credential_changes where tenant_id = $1", [TENANT]);
  assert.ok(keys.rows.every((r) => r.added_key_ids.length === 1));
  const consent = await db.pool.query(
    "select count(*) filter (where is_admin_consent)::int as admin, count(*)::int as n from v_consent_grants where tenant_id = $1",
    [TENANT],
  );
  assert.ok(consent.rows[0].admin > 0 && consent.rows[0].admin < consent.rows[0].n);
});

const audit = (id: string, at: string, activity: string, patch: Raw = {}): Raw => ({
  id,
  activityDateTime: at,
  activityDisplayName: activity,
  category: "Policy",
  result: "success",
  loggedByService: "Core Directory",
  initiatedBy: { user: { userPrincipalName: "admin@contoso.example", ipAddress: "203.0.113.5" }, app: null },
  targetResources: [],
  additionalDetails: [],
  ...patch,
});
const prop = (displayName: string, oldValue: unknown, newValue: unknown) => ({
  displayName,
  oldValue: oldValue === null ? null : JSON.stringify(oldValue),
  newValue: newValue === null ? null : JSON.stringify(newValue),
});

test("fields from targets and modified properties: role, keys, policy state, consent, new inviter", async () => {
  const T = "t-audit-hand";
  await store(T, [
    audit("role", "2026-03-05T10:00:00Z", "Add member to role outside of PIM", {
      targetResources: [
        {
          type: "User",
          id: "u1",
          userPrincipalName: "eve@contoso.example",
          modifiedProperties: [prop("Role.DisplayName", null, "Global Administrator")],
        },
      ],
    }),
    audit("keys", "2026-03-05T10:01:00Z", "Update application – Certificates and secrets management ", {
      targetResources: [
        {
          type: "Application",
          id: "app1",
          displayName: "Payroll",
          modifiedProperties: [
            prop(
              "KeyDescription",
              ["[KeyIdentifier=aaaa-1111,KeyType=Password,KeyUsage=Verify,DisplayName=old]"],
              [
                "[KeyIdentifier=aaaa-1111,KeyType=Password,KeyUsage=Verify,DisplayName=old]",
                "[KeyIdentifier=bbbb-2222,KeyType=AsymmetricX509Cert,KeyUsage=Verify,DisplayName=new]",
              ],
            ),
          ],
        },
      ],
      additionalDetails: [{ key: "User-Agent", value: "python-requests/2.31.0" }],
    }),
    audit("ca", "2026-03-05T10:02:00Z", "Update conditional access policy", {
      targetResources: [
        {
          type: "Policy",
          id: "pol1",
          displayName: "Require MFA for admins",
          modifiedProperties: [
            prop("ConditionalAccessPolicy", { id: "pol1", state: "enabled" }, { id: "pol1", state: "disabled" }),
          ],
        },
      ],
    }),
    audit("inv1", "2026-03-05T10:03:00Z", "Invite external user", {
      targetResources: [{ type: "User", id: "g1", userPrincipalName: "guest_x#EXT#@contoso.example" }],
    }),
    audit("inv2", "2026-03-06T10:03:00Z", "Invite external user", {
      targetResources: [{ type: "User", id: "g2", userPrincipalName: "guest_y#EXT#@contoso.example" }],
    }),
  ]);
  const one = async (sql: string) => {
    const { rows } = await db.pool.query(sql, [T]);
    assert.equal(rows.length, 1, sql);
    return rows[0] as Raw;
  };
  assert.deepEqual(
    await one(
      "select role_display_name, target_user_principal_name, outside_pim from v_role_assignments where tenant_id = $1",
    ),
    { role_display_name: "Global Administrator", target_user_principal_name: "eve@contoso.example", outside_pim: true },
  );
  assert.deepEqual(
    await one(
      `select activity_display_name, target_display_name, added_key_ids, had_keys_before, user_agent
       from v_app_credential_changes where tenant_id = $1`,
    ),
    {
      activity_display_name: "Update application – Certificates and secrets management",
      target_display_name: "Payroll",
      added_key_ids: ["bbbb-2222"],
      had_keys_before: true,
      user_agent: "python-requests/2.31.0",
    },
  );
  assert.deepEqual(
    await one("select policy_name, old_state, new_state from v_ca_policy_changes where tenant_id = $1"),
    { policy_name: "Require MFA for admins", old_state: "enabled", new_state: "disabled" },
  );
  const { rows } = await db.pool.query(
    "select id, invited_user_principal_name, new_inviter from v_guest_invitations where tenant_id = $1 order by id",
    [T],
  );
  assert.deepEqual(rows, [
    { id: "inv1", invited_user_principal_name: "guest_x#EXT#@contoso.example", new_inviter: true },
    { id: "inv2", invited_user_principal_name: "guest_y#EXT#@contoso.example", new_inviter: false },
  ]);
});
