// Writes one page of sign-ins in one statement (upsert keyed by tenant and id), and sets rejected events aside.

import type { PageEvents, RejectedEvent, ValidEvent } from "../ingest/events.ts";
import type { PoolClient } from "./db.ts";

export interface UpsertCounts {
  inserted: number;
  updated: number;
  unchanged: number;
}

export interface UpsertResult extends UpsertCounts {
  /** createdDateTime of each newly inserted event (for the arrival-lag histogram). */
  insertedCreatedAt: Date[];
}

// Typed columns are generated from `raw` by PostgreSQL, so only the key, the stream and `raw` travel.
// A changed re-publish updates the row (revision + 1); an identical one fails the `where` and writes nothing.
// (`xmax = 0` cannot tell inserts from updates on a partitioned table, hence the revision counter.)
// $4 is a JSON array of events or a Graph page (its `value` array; `->` gives null on an array); the elements at
// the positions in $5 are left out (see PageEvents). $6 is the Graph API version the page came from (null: unknown,
// e.g. an import); it describes raw, so it changes only with raw.
export const UPSERT_SIGN_INS = `
insert into sign_ins as s (tenant_id, id, created_date_time, stream, raw, first_seen_at, last_changed_at, api_version)
select $1, e ->> 'id', (e ->> 'createdDateTime')::timestamptz, $2, e, $3, $3, $6
from jsonb_array_elements(coalesce($4::jsonb -> 'value', $4::jsonb)) with ordinality as p(e, n)
where n <> all($5::int[])
on conflict (tenant_id, id, created_date_time) do update
  set raw = excluded.raw, stream = excluded.stream, last_changed_at = excluded.last_changed_at, revision = s.revision + 1,
    api_version = excluded.api_version
  where s.raw is distinct from excluded.raw
returning s.revision = 1 as inserted, s.created_date_time`;

export const INSERT_REJECTED = `
insert into rejected_events as r (tenant_id, stream, raw_hash, reason, raw_text, first_seen_at, last_seen_at)
select $1, $2, md5(x.raw_text), x.reason, x.raw_text, $3, $3
from jsonb_to_recordset($4::jsonb) as x(reason text, raw_text text)
on conflict (tenant_id, raw_hash) do update
  set last_seen_at = excluded.last_seen_at, times_seen = r.times_seen + 1, reason = excluded.reason`;

/** Stores parsed events, or a page's events straight from its JSON text (PageEvents). */
export function upsertSignIns(
  client: PoolClient,
  tenantId: string,
  stream: string,
  events: readonly ValidEvent[] | PageEvents,
  seenAt: Date,
  apiVersion?: string,
): Promise<UpsertResult> {
  return upsert(UPSERT_SIGN_INS, client, tenantId, stream, events, seenAt, apiVersion);
}

/** One statement for a page: counts what was inserted, updated (content changed) or left as it was. */
async function upsert(
  sql: string,
  client: PoolClient,
  tenantId: string,
  stream: string,
  events: readonly ValidEvent[] | PageEvents,
  seenAt: Date,
  apiVersion: string | undefined,
): Promise<UpsertResult> {
  if (("text" in events ? events.count : events.length) === 0) {
    return { inserted: 0, updated: 0, unchanged: 0, insertedCreatedAt: [] };
  }
  // A page arrives as Graph's own text; parsed events (import, tests) are serialised here.
  const page: PageEvents =
    "text" in events ? events : { text: JSON.stringify(events.map((e) => e.raw)), skip: [], count: events.length };
  const result = await client.query<{ inserted: boolean; created_date_time: Date }>(sql, [
    tenantId,
    stream,
    seenAt,
    page.text,
    page.skip,
    apiVersion ?? null,
  ]);
  const insertedCreatedAt: Date[] = [];
  for (const row of result.rows) {
    if (row.inserted) {
      insertedCreatedAt.push(row.created_date_time);
    }
  }
  const inserted = insertedCreatedAt.length;
  const updated = result.rows.length - inserted;
  return { inserted, updated, unchanged: page.count - inserted - updated, insertedCreatedAt };
}

export async function insertRejected(
  client: PoolClient,
  tenantId: string,
  stream: string,
  rejected: readonly RejectedEvent[],
  seenAt: Date,
): Promise<void> {
  if (rejected.length === 0) {
    return;
  }
  // One row per distinct text: the same bad event twice in one statement would make ON CONFLICT fail the page.
  const byText = new Map<string, string>();
  for (const r of rejected) {
    byText.set(r.rawText, r.reason);
  }
  const json = JSON.stringify([...byText].map(([rawText, reason]) => ({ reason, raw_text: rawText })));
  await client.query(INSERT_REJECTED, [tenantId, stream, seenAt, json]);
}

export const UPSERT_DIRECTORY_AUDITS = `
insert into directory_audits as s (tenant_id, id, activity_date_time, stream, raw, first_seen_at, last_changed_at, api_version)
select $1, e ->> 'id', (e ->> 'activityDateTime')::timestamptz, $2, e, $3, $3, $6
from jsonb_array_elements(coalesce($4::jsonb -> 'value', $4::jsonb)) with ordinality as p(e, n)
where n <> all($5::int[])
on conflict (tenant_id, id) do update
  set raw = excluded.raw, activity_date_time = excluded.activity_date_time, last_changed_at = excluded.last_changed_at,
      revision = s.revision + 1, api_version = excluded.api_version
  where s.raw is distinct from excluded.raw
returning s.revision = 1 as inserted, s.activity_date_time as created_date_time`;

/** Directory audit events, same contract as upsertSignIns. */
export function upsertDirectoryAudits(
  client: PoolClient,
  tenantId: string,
  stream: string,
  events: readonly ValidEvent[] | PageEvents,
  seenAt: Date,
  apiVersion?: string,
): Promise<UpsertResult> {
  return upsert(UPSERT_DIRECTORY_AUDITS, client, tenantId, stream, events, seenAt, apiVersion);
}
