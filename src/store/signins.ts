// Writes one page of sign-ins in one statement (upsert keyed by tenant and id), sets rejected events aside, and (the
// safety net) stores a page PostgreSQL refuses on its data again with the refused events isolated.

import type { PageEvents, RejectedEvent, ValidEvent } from "../events/classify.ts";
import { elementText, scanPage } from "../events/jsonb.ts";
import type { PoolClient } from "./db.ts";
import { queryWithBuffer } from "./page-query.ts";

interface UpsertCounts {
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
// $4 is a JSON array of events or a Graph page (its `value` array; `->` gives null on an array), as text or as a
// page's bytes as received in jsonb's binary format (JsonbBytes: PostgreSQL reads them as they are); an element whose
// position (1-based) is true in the boolean array $5 is left out (see PageEvents): one array subscript per element,
// so a page of any number of skipped elements costs linear time (a skip list tested with `<> all` was quadratic).
// $6 is the Graph API version the page came from (null: unknown, e.g. an import); it describes raw, so it changes
// only with raw.
const INSERT_SIGN_INS = `
insert into sign_ins as s (tenant_id, id, created_date_time, stream, raw, first_seen_at, last_changed_at, api_version)
select $1, e ->> 'id', (e ->> 'createdDateTime')::timestamptz, $2, e, $3, $3, $6
from jsonb_array_elements(coalesce($4::jsonb -> 'value', $4::jsonb)) with ordinality as p(e, n)
where ($5::boolean[])[n] is not true`;

export const UPSERT_SIGN_INS = `${INSERT_SIGN_INS}
on conflict (tenant_id, id, created_date_time) do update
  set raw = excluded.raw, stream = excluded.stream, last_changed_at = excluded.last_changed_at, revision = s.revision + 1,
    api_version = excluded.api_version
  where s.raw is distinct from excluded.raw
returning s.revision = 1 as inserted, s.created_date_time`;

// `import` by default: insert-only. A row already stored (by the daemon or an earlier import) is left exactly as it
// is (no revision + 1, xmin unchanged), so an archive never replaces richer or newer content (a beta copy by a v1.0
// one). `do nothing` returns only the inserted rows, so inserted = rows returned, unchanged = the rest.
const INSERT_NEW_SIGN_INS = `${INSERT_SIGN_INS}
on conflict (tenant_id, id, created_date_time) do nothing
returning true as inserted, s.created_date_time`;

// A page's statement holds the page twice in tuplestores: jsonb_array_elements' result and the transition table the
// statement triggers read. At the server's default work_mem (4 MB) both spill to temporary files, written once and
// read back by each trigger: a page of 999 real-sized sign-ins (7.5 MB) wrote 17.7 MB of them (pg_stat_database
// temp_bytes; none at 64 MB), ~8 % of the server's CPU for a page in a profile. bench/write-path.ts, five
// alternated pairs of runs at 4 MB and 64 MB: 5–14 % less time a page in each, 6–9 % less backend CPU in four (6 %
// more in one; a busy machine). Raised for the page's transaction only, never lowered (a role or database setting
// above it is kept). docs/benchmarks.md, change 16; test/page-query.test.ts.
export const PAGE_WORK_MEM = `
select set_config('work_mem', '64MB', true)
where pg_size_bytes(current_setting('work_mem')) < pg_size_bytes('64MB')`;

const INSERT_REJECTED = `
insert into rejected_events as r (tenant_id, stream, raw_hash, reason, raw_text, first_seen_at, last_seen_at)
select $1, $2, md5(x.raw_text), x.reason, x.raw_text, $3, $3
from jsonb_to_recordset($4::jsonb) as x(reason text, raw_text text)
on conflict (tenant_id, raw_hash) do update
  set last_seen_at = excluded.last_seen_at, times_seen = r.times_seen + 1, reason = excluded.reason`;

/** Stores parsed events, or a page's events straight from its JSON text (PageEvents). */
export const upsertSignIns: Upsert = (...args) => upsert(UPSERT_SIGN_INS, ...args);

/** Insert-only (INSERT_NEW_SIGN_INS): stored rows are left as they are, counted unchanged. */
export const insertNewSignIns: Upsert = (...args) => upsert(INSERT_NEW_SIGN_INS, ...args);

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
  // A page arrives as Graph's own bytes (sent in binary format, as they are, without a copy: page-query.ts); parsed
  // events (import, tests) are serialised here.
  const page: PageEvents =
    "text" in events ? events : { text: JSON.stringify(events.map((e) => e.raw)), skip: [], count: events.length };
  await client.query(PAGE_WORK_MEM);
  const result = await queryWithBuffer<{ inserted: boolean; created_date_time: Date }>(
    client,
    sql,
    [tenantId, stream, seenAt, page.text, page.skip, apiVersion ?? null],
    3,
  );
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
  // The text is kept as received except what no PostgreSQL text can hold: U+0000 and unpaired surrogates become
  // U+FFFD (an escape such as \u0000 or \ud800 in the JSON text is kept: it is plain characters).
  const byText = new Map<string, string>();
  for (const r of rejected) {
    byText.set(storableText(r.rawText), r.reason);
  }
  const json = JSON.stringify([...byText].map(([rawText, reason]) => ({ reason, raw_text: rawText })));
  await client.query(INSERT_REJECTED, [tenantId, stream, seenAt, json]);
}

function storableText(text: string): string {
  const wellFormed = text.isWellFormed() ? text : text.toWellFormed();
  return wellFormed.includes("\0") ? wellFormed.replaceAll("\0", "\uFFFD") : wellFormed;
}

/** The signature of upsertSignIns and upsertDirectoryAudits. */
export type Upsert = (
  client: PoolClient,
  tenantId: string,
  stream: string,
  events: readonly ValidEvent[] | PageEvents,
  seenAt: Date,
  apiVersion?: string,
) => Promise<UpsertResult>;

/**
 * SQLSTATE classes meaning "PostgreSQL cannot store this data", as opposed to "the database is unwell": 22 (data
 * exception: invalid JSON input 22P02, numeric overflow 22003, date/time out of range 22008, 22009, …) and 54
 * (program limit exceeded: index row too large 54000, stack depth 54001). A page statement failing with one of them
 * is isolated event by event (upsertIsolating) instead of failing its window forever.
 */
function isDataError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  return typeof code === "string" && /^(22|54)[0-9A-Z]{3}$/.test(code);
}

export interface IsolatedResult extends UpsertResult {
  /** The events PostgreSQL refused, each with its error as the reason. */
  rejected: RejectedEvent[];
}

const SAVEPOINT = "savepoint signin_isolate";
const RELEASE = "release savepoint signin_isolate";
const ROLLBACK_TO = "rollback to savepoint signin_isolate";

/**
 * The safety net behind the one-statement page: stores events given as their JSON texts inside the caller's
 * transaction, bisecting in savepoints whenever a statement fails with a data error (isDataError), until each event
 * PostgreSQL refuses is alone and set aside with PostgreSQL's message. k refused events among n cost about
 * 2·k·log2(n) statements; the rest is stored exactly as by `upsert`. Any other error is thrown.
 */
export async function upsertIsolating(
  upsert: Upsert,
  client: PoolClient,
  tenantId: string,
  stream: string,
  texts: readonly string[],
  seenAt: Date,
  apiVersion?: string,
): Promise<IsolatedResult> {
  const total: IsolatedResult = { inserted: 0, updated: 0, unchanged: 0, insertedCreatedAt: [], rejected: [] };
  const attempt = async (part: readonly string[]): Promise<void> => {
    if (part.length === 0) {
      return;
    }
    await client.query(SAVEPOINT);
    try {
      const r = await upsert(
        client,
        tenantId,
        stream,
        { text: `[${part.join(",")}]`, skip: [], count: part.length },
        seenAt,
        apiVersion,
      );
      await client.query(RELEASE);
      total.inserted += r.inserted;
      total.updated += r.updated;
      total.unchanged += r.unchanged;
      total.insertedCreatedAt.push(...r.insertedCreatedAt);
    } catch (error) {
      await client.query(ROLLBACK_TO);
      if (!isDataError(error)) {
        throw error;
      }
      if (part.length === 1) {
        const e = error as { code: string; message: string };
        total.rejected.push({
          reason: `PostgreSQL refused it: ${e.message} (SQLSTATE ${e.code})`,
          rawText: part[0] as string,
        });
        return;
      }
      const middle = Math.ceil(part.length / 2);
      await attempt(part.slice(0, middle));
      await attempt(part.slice(middle));
    }
  };
  await attempt(texts);
  return total;
}

/**
 * Runs `store` (one transaction) normally; when it failed because its page statement failed on its data (the
 * statement called `failed()` before rethrowing, and isDataError), runs it again with `isolate` true. Reader pages
 * and import batches use it: the one-statement fast path stays as it is, the safety net costs nothing until needed.
 */
export async function storeOrIsolate<T>(
  store: (isolate: boolean, failed: () => void) => Promise<T>,
  onDataError: (error: Error & { code?: string }) => void,
): Promise<T> {
  let upsertFailed = false;
  try {
    return await store(false, () => {
      upsertFailed = true;
    });
  } catch (error) {
    if (!upsertFailed || !isDataError(error)) {
      throw error;
    }
    onDataError(error as Error & { code?: string });
    return store(true, () => undefined);
  }
}

/** The texts of the events a PageEvents stores (its array's elements, less the skipped ones). */
export function storedTexts(events: PageEvents): string[] {
  const scan = scanPage(events.text);
  const texts: string[] = [];
  for (let index = 0; index < scan.elements.length; index++) {
    if (events.skip[index] !== true) {
      texts.push(elementText(scan, index));
    }
  }
  return texts;
}

const INSERT_DIRECTORY_AUDITS = `
insert into directory_audits as s (tenant_id, id, activity_date_time, stream, raw, first_seen_at, last_changed_at, api_version)
select $1, e ->> 'id', (e ->> 'activityDateTime')::timestamptz, $2, e, $3, $3, $6
from jsonb_array_elements(coalesce($4::jsonb -> 'value', $4::jsonb)) with ordinality as p(e, n)
where ($5::boolean[])[n] is not true`;

const UPSERT_DIRECTORY_AUDITS = `${INSERT_DIRECTORY_AUDITS}
on conflict (tenant_id, id) do update
  set raw = excluded.raw, activity_date_time = excluded.activity_date_time, last_changed_at = excluded.last_changed_at,
      revision = s.revision + 1, api_version = excluded.api_version
  where s.raw is distinct from excluded.raw
returning s.revision = 1 as inserted, s.activity_date_time as created_date_time`;

/** Directory audit events, same contract as upsertSignIns. */
export const upsertDirectoryAudits: Upsert = (...args) => upsert(UPSERT_DIRECTORY_AUDITS, ...args);

/** Insert-only directory audits (`import` by default), same contract as insertNewSignIns. */
const INSERT_NEW_DIRECTORY_AUDITS = `${INSERT_DIRECTORY_AUDITS}
on conflict (tenant_id, id) do nothing
returning true as inserted, s.activity_date_time as created_date_time`;

export const insertNewDirectoryAudits: Upsert = (...args) => upsert(INSERT_NEW_DIRECTORY_AUDITS, ...args);
