-- Up Migration
-- Rollups for the views whose 30-day window was slow (docs/performance-views.md): hourly counts per place and event
-- type (read by v_sign_in_volume_hourly and v_sign_ins_by_location_hourly) and daily Conditional Access outcomes per
-- policy (read by v_ca_policy_outcomes_daily). Both are maintained by statement triggers on sign_ins, in the same
-- statement as the upsert: an insert adds the new rows' contribution, a changed re-publish (UPDATE) subtracts the old
-- row's and adds the new one's (OLD/NEW transition tables), and a key whose count falls to 0 is deleted, so a rollup
-- holds exactly the groups a direct aggregate over sign_ins would. Retention (src/store/partitions.ts) deletes the
-- rollup rows of every month it drops. Keys may hold nulls (Graph omits fields): unique … nulls not distinct.

create table sign_in_rollup_hourly (
  hour timestamptz not null,
  tenant_id text not null,
  sign_in_event_type text,
  country_or_region text,
  state text,
  city text,
  latitude double precision,
  longitude double precision,
  sign_ins bigint not null,
  failures bigint not null,
  constraint sign_in_rollup_hourly_key unique nulls not distinct (hour, tenant_id, sign_in_event_type, country_or_region,
    state, city, latitude, longitude)
);

create table sign_in_ca_rollup_daily (
  day timestamptz not null,
  tenant_id text not null,
  policy_id text,
  result text,
  policy_name text,
  sign_ins bigint not null,
  constraint sign_in_ca_rollup_daily_key unique nulls not distinct (day, tenant_id, policy_id, result, policy_name)
);

-- Keys are upserted sorted, in one statement per rollup, so concurrent writers lock them in the same order.
create function signin_write_rollups() returns trigger
language plpgsql as $$
begin
  if tg_op = 'UPDATE' then
    insert into sign_in_rollup_hourly as r (hour, tenant_id, sign_in_event_type, country_or_region, state, city, latitude,
      longitude, sign_ins, failures)
    select signin_hour(d.created_date_time), d.tenant_id, d.sign_in_event_type, d.location_country_or_region,
      d.location_state, d.location_city, d.location_latitude, d.location_longitude, sum(d.n),
      coalesce(sum(d.n) filter (where d.status_error_code <> 0), 0)
    from (
      select o.*, -1 as n from old_rows o
      union all
      select w.*, 1 as n from new_rows w
    ) d
    group by 1, 2, 3, 4, 5, 6, 7, 8
    having sum(d.n) <> 0 or sum(d.n) filter (where d.status_error_code <> 0) <> 0
    order by 1, 2, 3, 4, 5, 6, 7, 8
    on conflict (hour, tenant_id, sign_in_event_type, country_or_region, state, city, latitude, longitude) do update
      set sign_ins = r.sign_ins + excluded.sign_ins, failures = r.failures + excluded.failures;

    insert into sign_in_ca_rollup_daily as r (day, tenant_id, policy_id, result, policy_name, sign_ins)
    select signin_day(d.created_date_time), d.tenant_id, signin_text(p.v -> 'id'), signin_text(p.v -> 'result'),
      signin_text(p.v -> 'displayName'), sum(d.n)
    from (
      select o.tenant_id, o.created_date_time, o.raw, -1 as n from old_rows o
      union all
      select w.tenant_id, w.created_date_time, w.raw, 1 as n from new_rows w
    ) d
    cross join lateral jsonb_array_elements(signin_array(d.raw -> 'appliedConditionalAccessPolicies')) as p(v)
    group by 1, 2, 3, 4, 5
    having sum(d.n) <> 0
    order by 1, 2, 3, 4, 5
    on conflict (day, tenant_id, policy_id, result, policy_name) do update set sign_ins = r.sign_ins + excluded.sign_ins;

    -- Groups the re-publish emptied (e.g. a city corrected) disappear, as they would from a direct aggregate.
    delete from sign_in_rollup_hourly r
    where r.sign_ins = 0
      and (r.hour, r.tenant_id) in (select distinct signin_hour(o.created_date_time), o.tenant_id from old_rows o);
    delete from sign_in_ca_rollup_daily r
    where r.sign_ins = 0
      and (r.day, r.tenant_id) in (select distinct signin_day(o.created_date_time), o.tenant_id from old_rows o);
  else
    insert into sign_in_rollup_hourly as r (hour, tenant_id, sign_in_event_type, country_or_region, state, city, latitude,
      longitude, sign_ins, failures)
    select signin_hour(n.created_date_time), n.tenant_id, n.sign_in_event_type, n.location_country_or_region,
      n.location_state, n.location_city, n.location_latitude, n.location_longitude, count(*),
      count(*) filter (where n.status_error_code <> 0)
    from new_rows n
    group by 1, 2, 3, 4, 5, 6, 7, 8
    order by 1, 2, 3, 4, 5, 6, 7, 8
    on conflict (hour, tenant_id, sign_in_event_type, country_or_region, state, city, latitude, longitude) do update
      set sign_ins = r.sign_ins + excluded.sign_ins, failures = r.failures + excluded.failures;

    insert into sign_in_ca_rollup_daily as r (day, tenant_id, policy_id, result, policy_name, sign_ins)
    select signin_day(n.created_date_time), n.tenant_id, signin_text(p.v -> 'id'), signin_text(p.v -> 'result'),
      signin_text(p.v -> 'displayName'), count(*)
    from new_rows n
    cross join lateral jsonb_array_elements(signin_array(n.raw -> 'appliedConditionalAccessPolicies')) as p(v)
    group by 1, 2, 3, 4, 5
    order by 1, 2, 3, 4, 5
    on conflict (day, tenant_id, policy_id, result, policy_name) do update set sign_ins = r.sign_ins + excluded.sign_ins;
  end if;
  return null;
end
$$;

create trigger sign_ins_rollups_insert after insert on sign_ins
  referencing new table as new_rows for each statement execute function signin_write_rollups();
create trigger sign_ins_rollups_update after update on sign_ins
  referencing old table as old_rows new table as new_rows for each statement execute function signin_write_rollups();

-- Existing sign-ins (a no-op on a fresh database). The migration runs in one transaction: no upsert can interleave.
insert into sign_in_rollup_hourly (hour, tenant_id, sign_in_event_type, country_or_region, state, city, latitude,
  longitude, sign_ins, failures)
select signin_hour(created_date_time), tenant_id, sign_in_event_type, location_country_or_region, location_state,
  location_city, location_latitude, location_longitude, count(*), count(*) filter (where status_error_code <> 0)
from sign_ins
group by 1, 2, 3, 4, 5, 6, 7, 8;
insert into sign_in_ca_rollup_daily (day, tenant_id, policy_id, result, policy_name, sign_ins)
select signin_day(created_date_time), tenant_id, policy_id, result, policy_name, count(*)
from sign_in_ca_policies
group by 1, 2, 3, 4, 5;

-- The views keep their columns and types; they now read a few rows per hour (or day) instead of every sign-in.
create or replace view v_sign_in_volume_hourly as
select tenant_id, hour, sign_in_event_type,
  sum(sign_ins)::bigint as sign_ins,
  sum(failures)::bigint as failures
from sign_in_rollup_hourly
group by tenant_id, hour, sign_in_event_type;

create or replace view v_sign_ins_by_location_hourly as
select tenant_id, hour, country_or_region, state, city, latitude, longitude,
  sum(sign_ins)::bigint as sign_ins,
  sum(failures)::bigint as failures
from sign_in_rollup_hourly
group by tenant_id, hour, country_or_region, state, city, latitude, longitude;

create or replace view v_ca_policy_outcomes_daily as
select tenant_id, day, policy_id, max(policy_name) as policy_name, result,
  sum(sign_ins)::bigint as sign_ins
from sign_in_ca_rollup_daily
group by tenant_id, day, policy_id, result;

-- Tables created by this role are already readable through 0002's default privileges; grant explicitly anyway (a
-- database migrated by another role), tolerating a missing role or missing rights like 0002 does.
do $$
begin
  if exists (select 1 from pg_roles where rolname = 'signin_reader') then
    grant select on sign_in_rollup_hourly, sign_in_ca_rollup_daily to signin_reader;
  end if;
exception when insufficient_privilege then
  raise notice 'signin_reader grants skipped: %', sqlerrm;
end
$$;

-- Down Migration
create or replace view v_sign_in_volume_hourly as
select tenant_id, signin_hour(created_date_time) as hour, sign_in_event_type,
  count(*) as sign_ins,
  count(*) filter (where status_error_code <> 0) as failures
from sign_ins
group by tenant_id, signin_hour(created_date_time), sign_in_event_type;

create or replace view v_sign_ins_by_location_hourly as
select tenant_id, signin_hour(created_date_time) as hour,
  location_country_or_region as country_or_region, location_state as state, location_city as city,
  location_latitude as latitude, location_longitude as longitude,
  count(*) as sign_ins,
  count(*) filter (where status_error_code <> 0) as failures
from sign_ins
group by tenant_id, signin_hour(created_date_time), location_country_or_region, location_state, location_city,
  location_latitude, location_longitude;

create or replace view v_ca_policy_outcomes_daily as
select tenant_id, signin_day(created_date_time) as day, policy_id, max(policy_name) as policy_name, result,
  count(*) as sign_ins
from sign_in_ca_policies
group by tenant_id, signin_day(created_date_time), policy_id, result;

drop trigger if exists sign_ins_rollups_insert on sign_ins;
drop trigger if exists sign_ins_rollups_update on sign_ins;
drop function if exists signin_write_rollups();
drop table if exists sign_in_ca_rollup_daily, sign_in_rollup_hourly;
