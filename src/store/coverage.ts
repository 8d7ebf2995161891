// The coverage ledger: which windows of each (tenant, stream) were read completely, when, and what they held.

import type { Pool, PoolClient } from "./db.ts";

export type Reader = "tail" | "sweep" | "backfill";

const RECORD_COVERAGE = `
insert into coverage as c (tenant_id, stream, window_from, window_to, first_read_at, last_read_at, events, new_events,
  pages, reader)
values ($1, $2, $3, $4, $5, $5, $6, $7, $8, $9)
on conflict (tenant_id, stream, window_from, window_to) do update
  set last_read_at = excluded.last_read_at, reads = c.reads + 1, events = excluded.events,
      new_events = excluded.new_events, pages = excluded.pages, reader = excluded.reader`;

export interface CoverageEntry {
  tenantId: string;
  stream: string;
  from: Date;
  to: Date;
  at: Date;
  events: number;
  newEvents: number;
  pages: number;
  reader: Reader;
}

export async function recordCoverage(client: PoolClient, entry: CoverageEntry): Promise<void> {
  await client.query(RECORD_COVERAGE, [
    entry.tenantId,
    entry.stream,
    entry.from,
    entry.to,
    entry.at,
    entry.events,
    entry.newEvents,
    entry.pages,
    entry.reader,
  ]);
}

/**
 * The windows of [from, to] not yet covered by the ledger (gaps between recorded windows), oldest first, counting
 * only windows read at least $5 ms after their end (0: any). A backfill resumes by reading only these.
 */
const UNCOVERED = `
with relevant as (
  select window_from, window_to from coverage
  where tenant_id = $1 and stream = $2 and window_to >= $3 and window_from <= $4
    and last_read_at >= window_to + $5 * interval '1 millisecond'
),
ordered as (
  select window_from, window_to,
         max(window_to) over (order by window_from rows between unbounded preceding and 1 preceding) as reach
  from relevant
)
select greatest(coalesce(reach, $3), $3) as gap_from, window_from as gap_to
from ordered where window_from > coalesce(reach, $3::timestamptz)
union all
select greatest(coalesce(max(window_to), $3), $3), $4::timestamptz from relevant
having coalesce(max(window_to), $3::timestamptz) < $4
order by 1`;

export async function uncoveredWindows(
  db: Pool | PoolClient,
  tenantId: string,
  stream: string,
  from: Date,
  to: Date,
  settledMs = 0,
): Promise<Array<{ from: Date; to: Date }>> {
  const result = await db.query<{ gap_from: Date; gap_to: Date }>(UNCOVERED, [tenantId, stream, from, to, settledMs]);
  return result.rows.filter((r) => r.gap_from < r.gap_to).map((r) => ({ from: r.gap_from, to: r.gap_to }));
}

const OLDEST_READ_IN = `
select min(last_read_at) as oldest from coverage
where tenant_id = $1 and stream = $2 and window_to > $3 and window_from < $4`;

/** True when [from, to] is entirely covered by reads made at or after `since` (a sweep would learn nothing new). */
export async function freshlyCovered(
  db: Pool | PoolClient,
  tenantId: string,
  stream: string,
  window: { from: Date; to: Date },
  since: Date,
): Promise<boolean> {
  if ((await uncoveredWindows(db, tenantId, stream, window.from, window.to)).length > 0) {
    return false;
  }
  const result = await db.query<{ oldest: Date | null }>(OLDEST_READ_IN, [tenantId, stream, window.from, window.to]);
  const oldest = result.rows[0]?.oldest;
  return oldest !== null && oldest !== undefined && oldest >= since;
}

const EARLIEST_TAIL_READ = `
select min(window_from) as earliest from coverage where tenant_id = $1 and stream = $2 and reader = 'tail'`;

/** Where the tail's coverage begins (sweeps re-read, they never reach back before it; that is backfill's job). */
export async function earliestTailCoverage(
  db: Pool | PoolClient,
  tenantId: string,
  stream: string,
): Promise<Date | undefined> {
  const result = await db.query<{ earliest: Date | null }>(EARLIEST_TAIL_READ, [tenantId, stream]);
  return result.rows[0]?.earliest ?? undefined;
}
