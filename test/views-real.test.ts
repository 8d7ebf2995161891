// Microsoft's published sign-in payloads (test/fixtures/real/, see SOURCES.md), written through the daemon's upsert:
// raw as received, typed columns from the real field values, and the views right on them: the FIDO2 MFA sign-in is
// in the MFA view, the 50140 "keep me signed in" interrupt is no failure, `status: {}` is no failure either.

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { after, before, test } from "node:test";

import type { ValidEvent } from "../src/events/classify.ts";
import { withTransaction } from "../src/store/db.ts";
import { ensurePartitions } from "../src/store/partitions.ts";
import { upsertDirectoryAudits, upsertSignIns } from "../src/store/signins.ts";
import { createTestDatabase, type TestDatabase } from "./helpers/db.ts";

type Raw = Record<string, unknown>;

const DIR = new URL("./fixtures/real/", import.meta.url);
const FILES = readdirSync(DIR).filter((f) => f.endsWith(".json"));
const eventsOf = (file: string): Raw[] => {
  const doc = JSON.parse(readFileSync(new URL(file, DIR), "utf8")) as Raw;
  return Array.isArray(doc.value) ? (doc.value as Raw[]) : [doc];
};
/** Each file in its own tenant: several files publish the same id with different content. */
const tenantOf = (file: string) => `real-${file.slice(0, 2)}`;
const valid = (raw: Raw, time: string): ValidEvent => ({ id: String(raw.id), createdDateTime: String(raw[time]), raw });

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase();
  await ensurePartitions(db.pool, new Date("2018-11-01T00:00:00Z"), new Date("2024-12-31T00:00:00Z"));
  for (const file of FILES) {
    const events = eventsOf(file);
    const version = file.includes("-v1-") ? "v1.0" : "beta";
    await withTransaction(db.pool, async (c) => {
      if (file.includes("directoryaudit")) {
        await upsertDirectoryAudits(
          c,
          tenantOf(file),
          "directoryAudits",
          events.map((e) => valid(e, "activityDateTime")),
          new Date(),
          version,
        );
      } else {
        await upsertSignIns(
          c,
          tenantOf(file),
          "interactiveUser",
          events.map((e) => valid(e, "createdDateTime")),
          new Date(),
          version,
        );
      }
    });
  }
});
after(() => db.drop());

const row = async (tenant: string, columns: string): Promise<Raw> => {
  const { rows } = await db.pool.query(`select ${columns} from sign_ins where tenant_id = $1`, [tenant]);
  assert.equal(rows.length, 1, tenant);
  return rows[0] as Raw;
};

test("every real payload is stored with raw equal to the input and its API version", async () => {
  assert.ok(FILES.length >= 8, FILES.join(", "));
  for (const file of FILES) {
    const table = file.includes("directoryaudit") ? "directory_audits" : "sign_ins";
    const { rows } = await db.pool.query(`select raw, api_version from ${table} where tenant_id = $1 order by id`, [
      tenantOf(file),
    ]);
    const input = eventsOf(file).sort((a, b) => (String(a.id) < String(b.id) ? -1 : 1));
    assert.deepEqual(
      rows.map((r) => r.raw),
      input,
      file,
    );
    assert.ok(rows.every((r) => r.api_version === (file.includes("-v1-") ? "v1.0" : "beta")));
  }
});

test("the beta typed columns carry the real values (and are null on v1.0)", async () => {
  const beta = await row(
    "real-02",
    `user_agent, authentication_protocol, autonomous_system_number, incoming_token_type, cross_tenant_access_type,
     home_tenant_id, resource_tenant_id, unique_token_identifier, token_issuer_type, user_type, original_transfer_method,
     session_id, outcome, is_failure`,
  );
  assert.deepEqual(beta, {
    user_agent:
      "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/91.0.4472.114 Safari/537.36 Edg/91.0.864.54",
    authentication_protocol: "oAuth2",
    autonomous_system_number: 3598,
    incoming_token_type: "Primary Refresh Token",
    cross_tenant_access_type: "none",
    home_tenant_id: "99081087-73c4-48d1-a112-f60ff75114f7",
    resource_tenant_id: "99081087-73c4-48d1-a112-f60ff75114f7",
    unique_token_identifier: "ZTE0OTk3YTQtZjg5Mi00YjBiLWIwNTEtZmViZTA1YzJhNDli",
    token_issuer_type: "AzureAD",
    user_type: "member",
    original_transfer_method: null,
    session_id: null,
    outcome: "bad_credentials",
    is_failure: true,
  });
  const v1 = await row("real-01", "user_agent, authentication_protocol, autonomous_system_number, outcome");
  assert.deepEqual(v1, {
    user_agent: null,
    authentication_protocol: null,
    autonomous_system_number: null,
    outcome: "success",
  });
});

test("the FIDO2 multifactor sign-in appears in the MFA view; its token-claim step does not", async () => {
  for (const tenant of ["real-04", "real-07"]) {
    const { rows } = await db.pool.query(
      `select authentication_method, succeeded, step_result_detail, steps::int from v_mfa_outcomes_daily
       where tenant_id = $1 and day >= '2020-03-13' and day < '2020-03-14'`,
      [tenant],
    );
    assert.deepEqual(
      rows,
      [{ authentication_method: "FIDO2", succeeded: true, step_result_detail: "methodSucceeded", steps: 1 }],
      tenant,
    );
  }
  // Single-factor password sign-ins (05) and a failed password (02) are no MFA prompt.
  const none = await db.pool.query(`select * from v_mfa_outcomes_daily where tenant_id in ('real-02', 'real-05')`);
  assert.equal(none.rows.length, 0);
});

test("the 50140 interrupt and the empty status are no failures; the 50126 is", async () => {
  const volume = await db.pool.query(
    `select tenant_id, sum(sign_ins)::int as n, sum(failures)::int as f, sum(interrupts)::int as i
     from v_sign_in_volume_hourly where tenant_id in ('real-02', 'real-05', 'real-06') and hour >= '2018-01-01'
     group by 1 order by 1`,
  );
  assert.deepEqual(volume.rows, [
    { tenant_id: "real-02", n: 1, f: 1, i: 0 },
    { tenant_id: "real-05", n: 1, f: 0, i: 0 },
    { tenant_id: "real-06", n: 1, f: 0, i: 1 },
  ]);
  assert.deepEqual(await row("real-06", "outcome, is_failure"), { outcome: "interrupt", is_failure: false });
  assert.deepEqual(await row("real-05", "outcome, is_failure"), { outcome: "unknown", is_failure: false });
  const failed = await db.pool.query(
    `select tenant_id, error_code, outcome from v_failed_sign_ins_daily where tenant_id like 'real-%' and day >= '2018-01-01'`,
  );
  assert.deepEqual(failed.rows, [{ tenant_id: "real-02", error_code: 50126, outcome: "bad_credentials" }]);
});

test("every view and SOC function answers on the real payloads", async () => {
  const { rows: views } = await db.pool.query(
    "select viewname from pg_views where schemaname = current_schema() and viewname like 'v\\_%' order by 1",
  );
  assert.ok(views.length >= 18, views.map((v) => v.viewname).join(", "));
  for (const { viewname } of views) {
    const tenantColumn = viewname === "v_data_freshness" ? "" : "where tenant_id like 'real-%'";
    await db.pool.query(`select * from ${viewname} ${tenantColumn}`);
  }
  const from = new Date("2018-01-01T00:00:00Z");
  const to = new Date("2022-01-01T00:00:00Z");
  await db.pool.query("select * from signin_password_spray($1, $2)", [from, to]);
  await db.pool.query("select * from signin_distributed_spray($1, $2)", [from, to]);
  // The new-country view sees each user's first country as new (no baseline), the 50126 not at all.
  const { rows } = await db.pool.query(
    "select tenant_id, outcome, has_baseline from v_new_country_attempts where tenant_id like 'real-%' order by 1",
  );
  assert.deepEqual(
    rows.map((r) => r.tenant_id),
    ["real-01", "real-04", "real-06", "real-07"],
  );
});
