// Directory-audit detail (migration 0024): the targets and modified-properties child tables and the typed initiating
// app / User-Agent columns, on Microsoft's published directoryAudit examples, on hand-made events shaped like them,
// on the simulator's audits against counts from raw, through re-publication, and back-filled by the migration.

import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { after, before, test } from "node:test";

import { runner } from "node-pg-migrate";

import type { ValidEvent } from "../src/events/classify.ts";
import { generateAuditHour } from "../src/simulator/audits.ts";
import { HOUR_MS } from "../src/simulator/generate.ts";
import { type Pool, withTransaction } from "../src/store/db.ts";
import { migrate, MIGRATIONS_DIR } from "../src/store/migrate.ts";
import { upsertDirectoryAudits } from "../src/store/signins.ts";
import { createTestDatabase, silentLog, type TestDatabase } from "./helpers/db.ts";

type Raw = Record<string, unknown>;

const FIXTURES = new URL("./fixtures/real/", import.meta.url);
let db: TestDatabase;

const store = (pool: Pool, tenant: string, events: Raw[]) =>
  withTransaction(pool, (c) =>
    upsertDirectoryAudits(
      c,
      tenant,
      "directoryAudits",
      events.map((raw): ValidEvent => ({ id: String(raw.id), createdDateTime: String(raw.activityDateTime), raw })),
      new Date(),
      "beta",
    ),
  );

const published = async (file: string): Promise<Raw[]> =>
  (JSON.parse(await readFile(new URL(file, FIXTURES), "utf8")) as { value: Raw[] }).value;

before(async () => {
  db = await createTestDatabase();
});
after(() => db.drop());

test("Microsoft's v1.0 example: both targets (capitalised Type), the group type and the modified property", async () => {
  await store(db.pool, "t-v1", await published("14-v1-directoryaudit-list.json"));
  const targets = await db.pool.query(
    `select ordinal, target_id, type, display_name, user_principal_name, group_type from directory_audit_targets
     where tenant_id = 't-v1' order by ordinal`,
  );
  assert.deepEqual(targets.rows, [
    {
      ordinal: 1,
      target_id: "ef7e527d-6c92-4234-8c6d-cf6fdfb57f95",
      type: "Group",
      display_name: "Example.com",
      user_principal_name: null,
      group_type: "unifiedGroups",
    },
    {
      ordinal: 2,
      target_id: "1f0e98f5-3161-4c6b-9b50-d488572f2bb7",
      type: "User",
      display_name: null,
      user_principal_name: "bob@contoso.com",
      group_type: null,
    },
  ]);
  const props = await db.pool.query(
    `select audit_id, target_ordinal, ordinal, name, old_value, new_value, old_json, new_json
     from directory_audit_modified_properties where tenant_id = 't-v1'`,
  );
  // "DirectorySync" is plain text, not JSON: kept as text, no parsed value.
  assert.deepEqual(props.rows, [
    {
      audit_id: "id",
      target_ordinal: 1,
      ordinal: 1,
      name: "Action Client Name",
      old_value: null,
      new_value: "DirectorySync",
      old_json: null,
      new_json: null,
    },
  ]);
  const audit = await db.pool.query(
    `select initiated_by_app_id, initiated_by_app_service_principal_id, user_agent from directory_audits
     where tenant_id = 't-v1'`,
  );
  // initiatedBy.app is null and additionalDetails has no User-Agent.
  assert.deepEqual(audit.rows, [
    { initiated_by_app_id: null, initiated_by_app_service_principal_id: null, user_agent: null },
  ]);
});

test("Microsoft's beta example: a target of type N/A with null fields, no modified properties", async () => {
  await store(db.pool, "t-beta", await published("16-beta-directoryaudit-list-2024-page.json"));
  const { rows } = await db.pool.query(
    `select t.type, t.display_name, t.user_principal_name, count(p.*)::int as props
     from directory_audit_targets t
     left join directory_audit_modified_properties p using (tenant_id, audit_id)
     where t.tenant_id = 't-beta' group by 1, 2, 3`,
  );
  assert.deepEqual(rows, [{ type: "N/A", display_name: null, user_principal_name: null, props: 0 }]);
});

/** A consent shaped like Graph's: an app initiator, JSON-in-a-string values, a User-Agent detail. */
const consent = (id: string, patch: Raw = {}): Raw => ({
  id,
  category: "ApplicationManagement",
  correlationId: "3f1c6a7e-0000-4000-8000-000000000001",
  result: "success",
  resultReason: "",
  activityDisplayName: "Consent to application",
  activityDateTime: "2026-03-04T10:00:00.1234567Z",
  loggedByService: "Core Directory",
  operationType: "Assign",
  initiatedBy: {
    user: null,
    app: {
      appId: "00000003-0000-0000-c000-000000000000",
      displayName: "Microsoft Graph",
      servicePrincipalId: "9b0a1c2d-0000-4000-8000-00000000aaaa",
      servicePrincipalName: "Microsoft Graph SP",
    },
  },
  targetResources: [
    {
      id: "5a6b7c8d-0000-4000-8000-00000000bbbb",
      displayName: "Mail Reader",
      type: "ServicePrincipal",
      userPrincipalName: null,
      groupType: null,
      modifiedProperties: [
        { displayName: "ConsentContext.IsAdminConsent", oldValue: null, newValue: '"True"' },
        {
          displayName: "ConsentAction.Permissions",
          oldValue: "[]",
          newValue: '["Scope: Mail.Read offline_access, ConsentType: AllPrincipals"]',
        },
        { displayName: "Policy", oldValue: null, newValue: '"{\\"state\\":\\"enabled\\"}"' },
      ],
    },
  ],
  additionalDetails: [
    { key: "User-Agent", value: "Mozilla/5.0 (Windows NT 10.0; Win64; x64)" },
    { key: "AppId", value: "5a6b7c8d-0000-4000-8000-00000000cccc" },
  ],
  ...patch,
});

test("the initiating service principal, the User-Agent, and values parsed when they are JSON", async () => {
  await store(db.pool, "t-app", [consent("c1")]);
  const audit = await db.pool.query(
    `select initiated_by_app_id, initiated_by_app_display_name, initiated_by_app_service_principal_id,
       initiated_by_app_service_principal_name, user_agent from directory_audits where tenant_id = 't-app'`,
  );
  assert.deepEqual(audit.rows, [
    {
      initiated_by_app_id: "00000003-0000-0000-c000-000000000000",
      initiated_by_app_display_name: "Microsoft Graph",
      initiated_by_app_service_principal_id: "9b0a1c2d-0000-4000-8000-00000000aaaa",
      initiated_by_app_service_principal_name: "Microsoft Graph SP",
      user_agent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
    },
  ]);
  const props = await db.pool.query(
    `select name, old_value, new_value, old_json, new_json from directory_audit_modified_properties
     where tenant_id = 't-app' order by ordinal`,
  );
  assert.deepEqual(props.rows, [
    { name: "ConsentContext.IsAdminConsent", old_value: null, new_value: '"True"', old_json: null, new_json: "True" },
    {
      name: "ConsentAction.Permissions",
      old_value: "[]",
      new_value: '["Scope: Mail.Read offline_access, ConsentType: AllPrincipals"]',
      old_json: [],
      new_json: ["Scope: Mail.Read offline_access, ConsentType: AllPrincipals"],
    },
    {
      name: "Policy",
      old_value: null,
      new_value: '"{\\"state\\":\\"enabled\\"}"',
      old_json: null,
      new_json: '{"state":"enabled"}',
    },
  ]);
  // Beta's top-level userAgent when additionalDetails has none.
  await store(db.pool, "t-app", [consent("c2", { additionalDetails: [], userAgent: "python-requests/2.31" })]);
  const ua = await db.pool.query("select user_agent from directory_audits where tenant_id = 't-app' and id = 'c2'");
  assert.equal(ua.rows[0].user_agent, "python-requests/2.31");
});

test("a changed re-publication replaces the audit's child rows; the same content leaves them untouched", async () => {
  await store(db.pool, "t-repub", [consent("r1")]);
  const before = await db.pool.query(
    "select xmin::text as x from directory_audit_targets where tenant_id = 't-repub' and audit_id = 'r1'",
  );
  await store(db.pool, "t-repub", [consent("r1")]);
  const same = await db.pool.query(
    "select xmin::text as x from directory_audit_targets where tenant_id = 't-repub' and audit_id = 'r1'",
  );
  assert.deepEqual(same.rows, before.rows);

  const two = consent("r1", {
    activityDateTime: "2026-03-04T10:00:05Z",
    targetResources: [
      { id: "u1", type: "User", userPrincipalName: "eve@contoso.example", modifiedProperties: [] },
      {
        id: "g1",
        type: "Group",
        displayName: "Admins",
        modifiedProperties: [{ displayName: "Group.DisplayName", oldValue: null, newValue: '"Admins"' }],
      },
    ],
  });
  await store(db.pool, "t-repub", [two]);
  const targets = await db.pool.query(
    `select ordinal, type, user_principal_name, activity_date_time from directory_audit_targets
     where tenant_id = 't-repub' order by ordinal`,
  );
  assert.deepEqual(
    targets.rows.map((r) => [r.ordinal, r.type, r.user_principal_name, r.activity_date_time.toISOString()]),
    [
      [1, "User", "eve@contoso.example", "2026-03-04T10:00:05.000Z"],
      [2, "Group", null, "2026-03-04T10:00:05.000Z"],
    ],
  );
  const props = await db.pool.query(
    "select target_ordinal, name, new_json from directory_audit_modified_properties where tenant_id = 't-repub'",
  );
  assert.deepEqual(props.rows, [{ target_ordinal: 2, name: "Group.DisplayName", new_json: "Admins" }]);
});

test("the simulator's audits: one target row per targetResources element, one property row per modifiedProperties", async () => {
  const tenant = "t-sim";
  const cfg = { seed: 7, users: 150, signInsPerUserPerDay: 1.5, arrivalLatency: false as const, republishRate: 0 };
  const end = Date.parse("2026-03-09T00:00:00Z") / HOUR_MS;
  const byId = new Map<string, Raw>();
  for (let hour = end - 7 * 24; hour < end; hour++) {
    for (const e of generateAuditHour(cfg, tenant, hour)) {
      byId.set(String(e.obj.id), e.obj);
    }
  }
  const audits = [...byId.values()];
  await store(db.pool, tenant, audits);
  const targets = audits.flatMap((a) => (a.targetResources as Raw[] | undefined) ?? []);
  const props = targets.flatMap((t) => (t.modifiedProperties as Raw[] | undefined) ?? []);
  const { rows } = await db.pool.query(
    `select (select count(*) from directory_audit_targets where tenant_id = $1)::int as targets,
       (select count(*) from directory_audit_modified_properties where tenant_id = $1)::int as props,
       (select count(*) from directory_audit_modified_properties where tenant_id = $1 and new_value is not null
          and new_json is null)::int as plain`,
    [tenant],
  );
  assert.ok(targets.length > 200 && props.length > 200, `${targets.length} targets, ${props.length} properties`);
  assert.equal(rows[0].targets, targets.length);
  assert.equal(rows[0].props, props.length);
  // Parsed wherever the value is JSON text (JSON.parse agrees).
  const plain = props.filter((p) => {
    if (typeof p.newValue !== "string") {
      return false;
    }
    try {
      JSON.parse(p.newValue);
      return false;
    } catch {
      return true;
    }
  });
  assert.equal(rows[0].plain, plain.length);
});

test("the migration back-fills the child tables of audits stored before it", async () => {
  const files = (await readdir(MIGRATIONS_DIR)).filter((f) => f.endsWith(".sql")).sort();
  const upTo0023 = files.findIndex((f) => f.startsWith("0024_"));
  assert.ok(upTo0023 > 0);
  const old = await createTestDatabase({ migrate: false });
  try {
    await runner({
      databaseUrl: old.url,
      dir: MIGRATIONS_DIR,
      direction: "up",
      migrationsTable: "schema_migrations",
      count: upTo0023,
      singleTransaction: true,
      log: () => undefined,
    });
    assert.equal((await old.pool.query("select to_regclass('directory_audit_targets') as t")).rows[0].t, null);
    await store(old.pool, "t-old", [...(await published("14-v1-directoryaudit-list.json")), consent("b1")]);
    await migrate(old.url, silentLog);
    const { rows } = await old.pool.query(
      `select audit_id, count(*)::int as targets,
         (select count(*) from directory_audit_modified_properties p where p.tenant_id = t.tenant_id
            and p.audit_id = t.audit_id)::int as props
       from directory_audit_targets t where tenant_id = 't-old' group by tenant_id, audit_id order by audit_id`,
    );
    assert.deepEqual(rows, [
      { audit_id: "b1", targets: 1, props: 3 },
      { audit_id: "id", targets: 2, props: 1 },
    ]);
    const ua = await old.pool.query("select user_agent from directory_audits where tenant_id = 't-old' and id = 'b1'");
    assert.equal(ua.rows[0].user_agent, "Mozilla/5.0 (Windows NT 10.0; Win64; x64)");
  } finally {
    await old.drop();
  }
});

test("the audit views run in parallel plans (their error-catching JSON helpers stay in the leader)", async () => {
  const client = await db.pool.connect();
  try {
    await client.query(`set parallel_setup_cost = 0; set parallel_tuple_cost = 0; set min_parallel_table_scan_size = 0;
      set max_parallel_workers_per_gather = 2`);
    for (const view of [
      "v_role_assignments",
      "v_consent_grants",
      "v_app_credential_changes",
      "v_ca_policy_changes",
      "v_security_info_changes",
      "v_guest_invitations",
      "v_privileged_users",
    ]) {
      const { rows } = await client.query(`select count(*)::int as n from ${view}`);
      assert.ok(rows[0].n >= 0, view);
    }
    const props = await client.query(
      "select count(*)::int as n from directory_audit_modified_properties where signin_try_jsonb(new_value) is not null",
    );
    assert.ok(props.rows[0].n > 0);
  } finally {
    await client.query("reset all");
    client.release();
  }
});
