// Monthly partition maintenance: months are created ahead of time, and whole months past the retention are dropped
// (never a mass DELETE). sign_ins and its child tables share the same monthly bounds (migrations/0002_analytics.sql).

import { sleep } from "../time.ts";
import { type Pool, type PoolClient, withTransaction } from "./db.ts";

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
 * matching sign_ins. A travel candidate goes with its earlier sign-in (the later one is never in an older month); the
 * success-after-failures and new-country candidates (migrations/0024) go with their own sign-in.
 */
const ROLLUP_TABLES = [
  { table: "sign_in_rollup_hourly", bucket: "hour" },
  { table: "sign_in_ca_rollup_daily", bucket: "day" },
  { table: "sign_in_mfa_rollup_daily", bucket: "day" },
  { table: "sign_in_travel_candidates", bucket: "previous_created_date_time" },
  { table: "sign_in_success_after_failures", bucket: "created_date_time" },
  { table: "sign_in_new_country_attempts", bucket: "created_date_time" },
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

// Creation waits at most this long for a lock (another creator, a retention drop, DDL); then it is retried.
const CREATE_LOCK_TIMEOUT = "5s";
const CREATE_ATTEMPTS = 5;
// SQLSTATEs after which creating a month again is expected to succeed: deadlock, lock timeout, and the "already
// exists" pair a creator outside signin_ensure_partition could still provoke.
const RETRY_CREATE = new Set(["40P01", "40001", "55P03", "42P07", "23505"]);

function monthStart(at: Date, offsetMonths = 0): Date {
  return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + offsetMonths, 1));
}

/** The distinct UTC months (their first instant) that hold the given times, oldest first; unreadable times skipped. */
export function monthsOf(times: Iterable<string | Date>): Date[] {
  const months = new Set<number>();
  for (const t of times) {
    // Graph's times carry up to 7 fractional digits; Date.parse reads at most 3.
    const ms = t instanceof Date ? t.getTime() : Date.parse(t.replace(/(\.\d{3})\d+/, "$1"));
    if (Number.isFinite(ms)) {
      months.add(monthStart(new Date(ms)).getTime());
    }
  }
  return [...months].sort((a, b) => a - b).map((ms) => new Date(ms));
}

/** Every month from the one holding `from` to the one holding `to`, plus `monthsAfter` more. */
export function monthsBetween(from: Date, to: Date, monthsAfter = 0): Date[] {
  const months: Date[] = [];
  const last = monthStart(to, monthsAfter).getTime();
  for (let m = monthStart(from); m.getTime() <= last; m = monthStart(m, 1)) {
    months.push(m);
  }
  return months;
}

/**
 * Creates the monthly partitions (sign_ins and its child tables) of `months` that are missing, in a transaction of
 * its own, and returns the sign_ins partition names. Call it before the transaction that writes rows of those
 * months, never inside one (migrations/0017_partition_creation.sql): creation serialises on a lock held to the end of
 * its transaction. Safe under any concurrency; a lock wait longer than a few seconds, or a deadlock, is retried.
 */
export async function ensureMonths(pool: Pool, months: readonly Date[]): Promise<string[]> {
  if (months.length === 0) {
    return [];
  }
  for (let attempt = 1; ; attempt++) {
    try {
      return await withTransaction(pool, async (client) => {
        await client.query(`set local lock_timeout = '${CREATE_LOCK_TIMEOUT}'`);
        const names: string[] = [];
        for (const month of months) {
          const result = await client.query<{ name: string }>(ENSURE_PARTITION, [month]);
          names.push(result.rows[0]?.name ?? "");
        }
        return names;
      });
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (attempt >= CREATE_ATTEMPTS || typeof code !== "string" || !RETRY_CREATE.has(code)) {
        throw error;
      }
      // Jittered, growing pause so that competing creators do not meet again at once.
      await sleep(50 * 2 ** attempt * (0.5 + Math.random()));
    }
  }
}

/** ensureMonths for every month from the one holding `from` to the month after the one holding `to`. */
export function ensurePartitions(pool: Pool, from: Date, to: Date): Promise<string[]> {
  return ensureMonths(pool, monthsBetween(from, to, 1));
}

/**
 * Creates the monthly partitions (sign_ins and its child tables) for the month holding `now` and the `monthsAhead`
 * months after it, when missing (ensureMonths). The daemon calls it at start and hourly, so the months it writes
 * normally exist before any writer needs them.
 * @returns the sign_ins partition names covering those months, oldest first.
 */
export async function ensureUpcomingPartitions(pool: Pool, now: Date, monthsAhead: number): Promise<string[]> {
  if (!Number.isInteger(monthsAhead) || monthsAhead < 0) {
    throw new RangeError(`monthsAhead must be a non-negative integer, got ${monthsAhead}`);
  }
  return ensureMonths(pool, monthsBetween(now, now, monthsAhead));
}

// A retention drop waits at most this long for each lock (readers and writers of sign_ins); then it gives up and
// the next hour tries again, so dashboards and writers queue behind it for seconds at most.
const DROP_LOCK_TIMEOUT = "2s";

// Bounds are read through PostgreSQL (pg_get_expr prints them in the session's zone with its offset, and the cast
// back is exact), so no partition name is ever parsed.
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

const LOCK_MAINTENANCE = `lock table signin_partition_maintenance in exclusive mode`;
// sign_ins first: the order writers take them in (see dropExpiredPartitions).
const LOCK_FOR_DROP = `lock table sign_ins, ${PARTITIONED_TABLES.filter((t) => t !== "sign_ins").join(", ")}, ${ROLLUP_TABLES.map((r) => r.table).join(", ")} in access exclusive mode`;

/**
 * Drops every monthly partition (of sign_ins and its child tables) that lies entirely before `now − retentionMs`:
 * a partition whose upper bound is later than the cutoff is kept, so no row younger than the retention is lost.
 * The rollups' rows for each dropped month are deleted too. Run it inside a transaction of its own (the locks are
 * held to its end).
 *
 * Dropping a partition takes an ACCESS EXCLUSIVE lock on its parent. Writers lock sign_ins first and its child
 * tables and rollups after it (their triggers), so the drop takes the maintenance lock (as creators do), then
 * sign_ins, then the child tables, in that order and with a lock timeout: it never holds a table a writer needs while
 * waiting for one that writer holds. A lock timeout (55P03) leaves everything as it was.
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
  await client.query(`set local lock_timeout = '${DROP_LOCK_TIMEOUT}'`);
  await client.query(LOCK_MAINTENANCE);
  const result = await client.query<{ parent: string; name: string; lower_bound: Date; upper_bound: Date }>(
    LIST_EXPIRED,
    [PARTITIONED_TABLES, cutoff],
  );
  if (result.rows.length === 0) {
    return [];
  }
  await client.query(LOCK_FOR_DROP);
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
