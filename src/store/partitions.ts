// Monthly partition maintenance: months are created ahead of time, and whole months past the retention are dropped
// (never a mass DELETE). sign_ins and its child tables share the same monthly bounds (migrations/0002_analytics.sql).

import type { Pool, PoolClient } from "./db.ts";

/** Tables partitioned by month on created_date_time; child tables first, so a drop never leaves orphans behind. */
export const PARTITIONED_TABLES = [
  "sign_in_ca_policies",
  "sign_in_risk_events",
  "sign_in_authentication_details",
  "sign_ins",
] as const;

/**
 * Rollups of sign_ins (migrations/0014_rollups.sql, 0015_fast_views.sql), not partitioned: with each dropped sign_ins
 * month, their rows for that month (bucket column in [from, to)) are deleted in the same transaction, so they keep
 * matching sign_ins. A travel candidate goes with its earlier sign-in (the later one is never in an older month).
 */
export const ROLLUP_TABLES = [
  { table: "sign_in_rollup_hourly", bucket: "hour" },
  { table: "sign_in_ca_rollup_daily", bucket: "day" },
  { table: "sign_in_mfa_rollup_daily", bucket: "day" },
  { table: "sign_in_travel_candidates", bucket: "previous_created_date_time" },
] as const;

export interface DroppedPartition {
  /** The partitioned table it belonged to, e.g. `sign_ins`. */
  parent: string;
  /** The partition dropped, e.g. `sign_ins_2025_01`. */
  name: string;
  /** Its lower bound (inclusive). */
  from: Date;
  /** Its upper bound (exclusive); always <= now − retention. */
  to: Date;
}

const ENSURE_PARTITION = `select signin_ensure_partition($1::timestamptz) as name`;

// Bounds are read through PostgreSQL (pg_get_expr prints them in the session's zone with its offset, and the cast
// back is exact), so no partition name is ever parsed. Default partitions have no FROM … TO and are never listed.
const LIST_EXPIRED = `
select p.parent, p.name, p.lower_bound, p.upper_bound
from (
  select parent.relname as parent, child.relname as name,
    (regexp_match(pg_get_expr(child.relpartbound, child.oid), 'FROM \\(''([^'']+)''\\) TO'))[1]::timestamptz as lower_bound,
    (regexp_match(pg_get_expr(child.relpartbound, child.oid), 'TO \\(''([^'']+)''\\)'))[1]::timestamptz as upper_bound
  from pg_inherits i
  join pg_class parent on parent.oid = i.inhparent
  join pg_class child on child.oid = i.inhrelid
  join pg_namespace n on n.oid = parent.relnamespace
  where n.nspname = current_schema() and parent.relname = any($1::text[])
) p
where p.upper_bound <= $2::timestamptz
order by array_position($1::text[], p.parent::text), p.upper_bound`;

function monthStart(at: Date, offsetMonths = 0): Date {
  return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + offsetMonths, 1));
}

/**
 * Creates the monthly partitions (sign_ins and its child tables) for the month holding `now` and the `monthsAhead`
 * months after it, when missing; rows a default partition caught for such a month are moved into it. Idempotent and
 * safe to call concurrently (signin_ensure_partition serialises on an advisory lock). Run it inside a transaction.
 * @returns the sign_ins partition names covering those months, oldest first.
 */
export async function ensureUpcomingPartitions(
  client: Pool | PoolClient,
  now: Date,
  monthsAhead: number,
): Promise<string[]> {
  if (!Number.isInteger(monthsAhead) || monthsAhead < 0) {
    throw new RangeError(`monthsAhead must be a non-negative integer, got ${monthsAhead}`);
  }
  const names: string[] = [];
  for (let i = 0; i <= monthsAhead; i++) {
    const result = await client.query<{ name: string }>(ENSURE_PARTITION, [monthStart(now, i)]);
    names.push(result.rows[0]?.name ?? "");
  }
  return names;
}

/**
 * Drops every monthly partition (of sign_ins and its child tables) that lies entirely before `now − retentionMs`:
 * a partition whose upper bound is later than the cutoff is kept, so no row younger than the retention is lost.
 * Default partitions are never dropped. The rollups' rows for each dropped month are deleted too. Takes the same advisory lock as partition creation, so it does not race a
 * concurrent signin_ensure_partition. Run it inside a transaction (the lock is held to its end); `drop table` needs
 * an ACCESS EXCLUSIVE lock, so it waits for readers of that partition to finish.
 * @param retentionMs how long to keep sign-ins, in milliseconds (e.g. 400 days); must be positive.
 * @returns the partitions dropped, child tables first, oldest first within a table.
 */
export async function dropExpiredPartitions(
  client: PoolClient,
  retentionMs: number,
  now: Date,
): Promise<DroppedPartition[]> {
  if (!Number.isFinite(retentionMs) || retentionMs <= 0) {
    throw new RangeError(`retentionMs must be a positive number of milliseconds, got ${retentionMs}`);
  }
  const cutoff = new Date(now.getTime() - retentionMs);
  await client.query(`select pg_advisory_xact_lock(hashtext('signin_ensure_partition'))`);
  const result = await client.query<{ parent: string; name: string; lower_bound: Date; upper_bound: Date }>(
    LIST_EXPIRED,
    [PARTITIONED_TABLES, cutoff],
  );
  const dropped: DroppedPartition[] = [];
  for (const row of result.rows) {
    // Identifiers come from pg_class, quoted by PostgreSQL itself.
    await client.query(`drop table if exists ${await quoteIdent(client, row.name)}`);
    dropped.push({ parent: row.parent, name: row.name, from: row.lower_bound, to: row.upper_bound });
    if (row.parent === "sign_ins") {
      // Month bounds are whole UTC hours and days, so a bucket lies entirely inside or outside the month.
      for (const { table, bucket } of ROLLUP_TABLES) {
        await client.query(`delete from ${table} where ${bucket} >= $1 and ${bucket} < $2`, [
          row.lower_bound,
          row.upper_bound,
        ]);
      }
    }
  }
  return dropped;
}

async function quoteIdent(client: PoolClient, name: string): Promise<string> {
  const result = await client.query<{ q: string }>("select quote_ident($1) as q", [name]);
  return result.rows[0]?.q ?? "";
}
