-- Up Migration
-- Partition creation that is safe under any concurrency and never conflicts with writers (issue 12).
--
-- Two faults of 0001/0002's signin_ensure_partition:
-- 1. Races. It serialised creators on pg_advisory_xact_lock, then re-checked with to_regclass. Taking an advisory
--    lock does not make a backend read the catalog changes other sessions committed meanwhile (a relation lock
--    does), so the re-check could miss the table a concurrent creator had just committed, and both created it:
--    `relation "sign_ins_2027_01" already exists` (42P07). Any login (the read-only BI role too) could also hold
--    that advisory lock and block partition creation for good.
-- 2. Deadlocks. Attaching a partition to a table that has a DEFAULT partition takes an ACCESS EXCLUSIVE lock on the
--    default partition (to check it holds no row of the new range). Writers lock the default partitions too (every
--    statement that scans sign_ins or a child table without plan-time pruning, e.g. the child-row and travel
--    triggers), in an order that differs from the creator's, so creator and writers could wait on each other
--    (40P01), failing a cycle or a backfill slice.
--
-- Now:
-- - No default partitions. Attaching a partition then takes only SHARE UPDATE EXCLUSIVE on the parent, which no
--   writer (ROW EXCLUSIVE) or reader (ACCESS SHARE) conflicts with. The daemon creates every month it writes
--   before the write transaction, in a transaction of its own (src/store/partitions.ts); a row for a month that
--   has no partition fails its statement (23514 "no partition of relation … found for row") instead of hiding in a
--   default partition, and the next attempt creates the month first.
-- - Creators (and retention drops) serialise on a table lock, `signin_partition_maintenance` in EXCLUSIVE mode:
--   acquiring it makes the backend process catalog invalidations, so the checks after it see every committed
--   partition; and only roles with UPDATE, DELETE or TRUNCATE on that table can take it (nobody but its owner).

create table signin_partition_maintenance ();
comment on table signin_partition_maintenance is
  'No rows. Locked in EXCLUSIVE mode by partition creation and retention drops (migrations/0017).';
-- PUBLIC gets nothing; signin_reader gets SELECT like every table (0002's default privileges), which allows only
-- ACCESS SHARE locks, and those do not conflict with EXCLUSIVE.
revoke all on signin_partition_maintenance from public;

-- Rows that default partitions caught (possible only for months written before their partition existed) move to
-- their months first, with 0002's function, which still moves strays; then the default partitions go.
do $$
declare
  m record;
begin
  for m in
    select distinct date_trunc('month', t.created_date_time at time zone 'UTC') at time zone 'UTC' as month_start
    from (
      select created_date_time from sign_ins_default
      union all select created_date_time from sign_in_ca_policies_default
      union all select created_date_time from sign_in_risk_events_default
      union all select created_date_time from sign_in_authentication_details_default
    ) t
  loop
    perform signin_ensure_partition(m.month_start);
  end loop;
end
$$;
drop table sign_in_ca_policies_default, sign_in_risk_events_default, sign_in_authentication_details_default,
  sign_ins_default;

-- Creates the monthly partitions of sign_ins and its child tables (same month, same bounds) holding `at`, when
-- missing; returns the sign_ins partition's name. Safe to call from any number of sessions at once. Call it in a
-- transaction of its own, never in one that writes sign-ins: the maintenance lock is held to the end of the
-- transaction, and a writer waiting for it while holding row locks another creator's writer waits for could
-- deadlock.
create or replace function signin_ensure_partition(at timestamptz) returns text
language plpgsql as $$
declare
  month_start timestamptz := date_trunc('month', at at time zone 'UTC') at time zone 'UTC';
  month_end timestamptz := month_start + interval '1 month';
  suffix text := to_char(month_start at time zone 'UTC', 'YYYY_MM');
  parents text[] := array['sign_ins', 'sign_in_ca_policies', 'sign_in_risk_events', 'sign_in_authentication_details'];
  parent text;
  name text;
begin
  -- Fast path: every partition of the month exists and is attached (a stale answer here can only be "missing").
  if (select count(*) from pg_inherits i
      where i.inhrelid in (select to_regclass(p || '_' || suffix) from unnest(parents) p)) = 4 then
    return 'sign_ins_' || suffix;
  end if;
  lock table signin_partition_maintenance in exclusive mode;
  foreach parent in array parents loop
    name := parent || '_' || suffix;
    if to_regclass(name) is null then
      execute format('create table %I (like %I including defaults including generated)', name, parent);
    end if;
    if not exists (select 1 from pg_inherits where inhrelid = to_regclass(name)) then
      execute format('alter table %I attach partition %I for values from (%L) to (%L)', parent, name, month_start,
        month_end);
    end if;
  end loop;
  return 'sign_ins_' || suffix;
end
$$;

-- Down Migration
-- Restores 0002's function and the default partitions (empty).
create table sign_ins_default partition of sign_ins default;
create table sign_in_ca_policies_default partition of sign_in_ca_policies default;
create table sign_in_risk_events_default partition of sign_in_risk_events default;
create table sign_in_authentication_details_default partition of sign_in_authentication_details default;
create or replace function signin_ensure_partition(at timestamptz) returns text
language plpgsql as $$
declare
  month_start timestamptz := date_trunc('month', at at time zone 'UTC') at time zone 'UTC';
  month_end timestamptz := month_start + interval '1 month';
  suffix text := to_char(month_start at time zone 'UTC', 'YYYY_MM');
  parent text;
  name text;
  cols text;
begin
  if to_regclass('sign_ins_' || suffix) is not null and to_regclass('sign_in_ca_policies_' || suffix) is not null
     and to_regclass('sign_in_risk_events_' || suffix) is not null
     and to_regclass('sign_in_authentication_details_' || suffix) is not null then
    return 'sign_ins_' || suffix;
  end if;
  perform pg_advisory_xact_lock(hashtext('signin_ensure_partition'));
  foreach parent in array array['sign_ins', 'sign_in_ca_policies', 'sign_in_risk_events', 'sign_in_authentication_details'] loop
    name := parent || '_' || suffix;
    continue when to_regclass(name) is not null;
    select string_agg(quote_ident(attname), ', ' order by attnum) into cols
      from pg_attribute where attrelid = parent::regclass and attnum > 0 and not attisdropped and attgenerated = '';
    execute format('create table %I (like %I including defaults including generated)', name, parent);
    execute format(
      'with moved as (delete from %I where created_date_time >= $1 and created_date_time < $2 returning *)
       insert into %I (%s) select %s from moved', parent || '_default', name, cols, cols)
      using month_start, month_end;
    execute format('alter table %I attach partition %I for values from (%L) to (%L)', parent, name, month_start, month_end);
  end loop;
  return 'sign_ins_' || suffix;
end
$$;
drop table signin_partition_maintenance;
