-- Up Migration
-- The remaining views whose 30-day window took about a second or more at a year's volume (docs/performance-views.md):
--   * v_mfa_outcomes_daily reads a daily rollup kept exactly like 0014's (statement triggers on sign_ins with OLD/NEW
--     transition tables; emptied keys are deleted; retention deletes a dropped month's rows);
--   * v_impossible_travel_candidates reads a table of candidate pairs kept by a statement trigger: a changed sign-in
--     can only change its own pair and the pairs of the next qualifying sign-ins of the same user, so only those are
--     recomputed, with exactly the view's former query;
--   * the failure and password-spray views are answered by index-only scans of partial covering indexes;
--   * indexes that no view reads any more are dropped (write cost and disk).
-- Each table holds exactly what the former query over sign_ins returns (test/rollups.test.ts compares them).

-- ---------------------------------------------------------------------------------------------------------------
-- MFA outcomes per day (v_mfa_outcomes_daily): the steps of raw.authenticationDetails that asked for multifactor.

create table sign_in_mfa_rollup_daily (
  day timestamptz not null,
  tenant_id text not null,
  authentication_method text,
  succeeded boolean,
  steps bigint not null,
  constraint sign_in_mfa_rollup_daily_key unique nulls not distinct (day, tenant_id, authentication_method, succeeded)
);

-- Keys are upserted sorted, in one statement, so concurrent writers lock them in the same order. The UPDATE branch
-- subtracts the old rows' steps and adds the new ones'; old_rows is only named there (an INSERT has none).
create function signin_write_mfa_rollup() returns trigger
language plpgsql as $$
begin
  if tg_op = 'UPDATE' then
    insert into sign_in_mfa_rollup_daily as r (day, tenant_id, authentication_method, succeeded, steps)
    select signin_day(d.created_date_time), d.tenant_id, signin_text(s.v -> 'authenticationMethod'),
      signin_bool(s.v -> 'succeeded'), sum(d.n)
    from (
      select o.tenant_id, o.created_date_time, o.raw, -1 as n from old_rows o
      union all
      select w.tenant_id, w.created_date_time, w.raw, 1 as n from new_rows w
    ) d
    cross join lateral jsonb_array_elements(signin_array(d.raw -> 'authenticationDetails')) as s(v)
    where signin_text(s.v -> 'authenticationStepRequirement') ilike '%multifactor%'
    group by 1, 2, 3, 4
    having sum(d.n) <> 0
    order by 1, 2, 3, 4
    on conflict (day, tenant_id, authentication_method, succeeded) do update set steps = r.steps + excluded.steps;

    delete from sign_in_mfa_rollup_daily r
    where r.steps = 0
      and (r.day, r.tenant_id) in (select distinct signin_day(o.created_date_time), o.tenant_id from old_rows o);
  else
    insert into sign_in_mfa_rollup_daily as r (day, tenant_id, authentication_method, succeeded, steps)
    select signin_day(w.created_date_time), w.tenant_id, signin_text(s.v -> 'authenticationMethod'),
      signin_bool(s.v -> 'succeeded'), count(*)
    from new_rows w
    cross join lateral jsonb_array_elements(signin_array(w.raw -> 'authenticationDetails')) as s(v)
    where signin_text(s.v -> 'authenticationStepRequirement') ilike '%multifactor%'
    group by 1, 2, 3, 4
    order by 1, 2, 3, 4
    on conflict (day, tenant_id, authentication_method, succeeded) do update set steps = r.steps + excluded.steps;
  end if;
  return null;
end
$$;

create trigger sign_ins_rollups_mfa_insert after insert on sign_ins
  referencing new table as new_rows for each statement execute function signin_write_mfa_rollup();
create trigger sign_ins_rollups_mfa_update after update on sign_ins
  referencing old table as old_rows new table as new_rows for each statement execute function signin_write_mfa_rollup();

-- Existing sign-ins (a no-op on a fresh database); the child rows hold the same steps.
insert into sign_in_mfa_rollup_daily (day, tenant_id, authentication_method, succeeded, steps)
select signin_day(created_date_time), tenant_id, authentication_method, succeeded, count(*)
from sign_in_authentication_details
where step_requirement ilike '%multifactor%'
group by 1, 2, 3, 4;

create or replace view v_mfa_outcomes_daily as
select tenant_id, day, authentication_method, succeeded, steps
from sign_in_mfa_rollup_daily;

-- ---------------------------------------------------------------------------------------------------------------
-- Impossible-travel candidates (v_impossible_travel_candidates). A "travel sign-in" is a successful interactive
-- sign-in with coordinates. Each travel sign-in b is paired with the latest travel sign-in a of the same user in
-- the 24 h before it; the pair is a candidate when they are > 500 km apart at an implied speed > 900 km/h. The rows
-- are exactly what the former view computed on the fly (its query is signin_travel_pairs below).

create table sign_in_travel_candidates (
  tenant_id text not null,
  user_principal_name text not null,
  id text not null,
  created_date_time timestamptz not null,
  previous_id text not null,
  previous_created_date_time timestamptz not null,
  previous_country_or_region text,
  previous_city text,
  previous_ip_address text,
  country_or_region text,
  city text,
  ip_address text,
  distance_km numeric not null,
  minutes_between numeric not null,
  speed_kmh numeric not null,
  primary key (tenant_id, id, created_date_time)
);
create index sign_in_travel_candidates_time_idx on sign_in_travel_candidates (created_date_time, tenant_id);
create index sign_in_travel_candidates_user_idx on sign_in_travel_candidates (tenant_id, user_principal_name,
  created_date_time);

-- A travel sign-in's time, as the trigger passes sets of them between its statements.
create type signin_travel_key as (tenant_id text, user_principal_name text, created_date_time timestamptz);

-- The candidate pairs whose later sign-in is at one of `later`: the former view's query, restricted to those times.
create function signin_travel_pairs(later signin_travel_key[]) returns setof sign_in_travel_candidates
language sql stable as $$
  select b.tenant_id, b.user_principal_name, b.id, b.created_date_time,
    a.id, a.created_date_time, a.location_country_or_region, a.location_city, a.ip_address,
    b.location_country_or_region, b.location_city, b.ip_address,
    round(a.distance_km::numeric, 1),
    round((extract(epoch from b.created_date_time - a.created_date_time) / 60)::numeric, 1),
    round((a.distance_km / greatest(extract(epoch from b.created_date_time - a.created_date_time), 60) * 3600)::numeric, 0)
  from unnest(later) as l
  join sign_ins b on b.tenant_id = l.tenant_id and b.user_principal_name = l.user_principal_name
    and b.created_date_time = l.created_date_time
  -- The same user and the 24 h before, written as row comparisons on (user, time) so that only
  -- sign_ins_travel_user_idx can serve them: on a month without statistics yet (a fresh partition, one large
  -- statement) the planner would otherwise as soon take sign_ins_tenant_created_idx and filter a whole day per probe.
  cross join lateral (
    select p.id, p.created_date_time, p.location_country_or_region, p.location_city, p.ip_address,
      signin_distance_km(p.location_latitude, p.location_longitude, b.location_latitude, b.location_longitude) as distance_km
    from sign_ins p
    where p.tenant_id = b.tenant_id
      and (p.user_principal_name, p.created_date_time) < (b.user_principal_name, b.created_date_time)
      and (p.user_principal_name, p.created_date_time) > (b.user_principal_name, b.created_date_time - interval '24 hours')
      and p.is_interactive and p.status_error_code = 0 and p.location_latitude is not null and p.location_longitude is not null
    order by p.user_principal_name desc, p.created_date_time desc
    limit 1
  ) a
  where b.is_interactive and b.status_error_code = 0 and b.location_latitude is not null and b.location_longitude is not null
    and a.distance_km > 500
    and a.distance_km / greatest(extract(epoch from b.created_date_time - a.created_date_time), 60) * 3600 > 900
$$;

-- A changed travel sign-in c (inserted, or re-published with other content, before or after) changes the pair of c
-- itself and of the travel sign-ins at the first later time of the same user within 24 h (c is, or was, their
-- predecessor); no other pair. Those are recomputed from sign_ins as it stands after the statement.
--
-- Concurrent writers of one tenant (backfill slices, several streams) take a transaction lock per tenant first:
-- a writer that waited sees the other's committed sign-ins, and since it recomputes its own rows' pairs and their
-- successors' pairs, every pair spanning both writers' rows is computed by whichever commits last.
create function signin_write_travel_candidates() returns trigger
language plpgsql as $$
declare
  changed signin_travel_key[];
  later signin_travel_key[];
begin
  if tg_op = 'UPDATE' then
    select array_agg(distinct row(c.tenant_id, c.user_principal_name, c.created_date_time)::signin_travel_key)
      into changed
    from (
      select o.tenant_id, o.user_principal_name, o.created_date_time from old_rows o
      where o.is_interactive and o.status_error_code = 0 and o.location_latitude is not null
        and o.location_longitude is not null and o.user_principal_name is not null
      union all
      select w.tenant_id, w.user_principal_name, w.created_date_time from new_rows w
      where w.is_interactive and w.status_error_code = 0 and w.location_latitude is not null
        and w.location_longitude is not null and w.user_principal_name is not null
    ) c;
  else
    select array_agg(distinct row(w.tenant_id, w.user_principal_name, w.created_date_time)::signin_travel_key)
      into changed
    from new_rows w
    where w.is_interactive and w.status_error_code = 0 and w.location_latitude is not null
      and w.location_longitude is not null and w.user_principal_name is not null;
  end if;
  if changed is null then
    return null;
  end if;

  perform pg_advisory_xact_lock(hashtextextended('signin-ingest/travel/' || t.tenant_id, 0))
  from (select distinct c.tenant_id from unnest(changed) as c order by 1) t;

  -- From here on each statement sees what concurrent writers of the tenant committed before the lock was granted.
  select array_agg(distinct k) into later
  from (
    select c::signin_travel_key as k from unnest(changed) as c
    union all
    select row(c.tenant_id, c.user_principal_name, n.next_time)::signin_travel_key
    from unnest(changed) as c
    cross join lateral (
      -- Row comparisons, as in signin_travel_pairs, so that sign_ins_travel_user_idx serves the probe.
      select s.created_date_time as next_time
      from sign_ins s
      where s.tenant_id = c.tenant_id
        and (s.user_principal_name, s.created_date_time) > (c.user_principal_name, c.created_date_time)
        and (s.user_principal_name, s.created_date_time) < (c.user_principal_name, c.created_date_time + interval '24 hours')
        and s.is_interactive and s.status_error_code = 0 and s.location_latitude is not null
        and s.location_longitude is not null
      order by s.user_principal_name, s.created_date_time
      limit 1
    ) n
  ) x;

  delete from sign_in_travel_candidates t
  using unnest(later) as l
  where t.tenant_id = l.tenant_id and t.user_principal_name = l.user_principal_name
    and t.created_date_time = l.created_date_time;

  insert into sign_in_travel_candidates
  select * from signin_travel_pairs(later)
  order by tenant_id, id, created_date_time;
  return null;
end
$$;

create trigger sign_ins_travel_insert after insert on sign_ins
  referencing new table as new_rows for each statement execute function signin_write_travel_candidates();
create trigger sign_ins_travel_update after update on sign_ins
  referencing old table as old_rows new table as new_rows for each statement execute function signin_write_travel_candidates();

-- Existing sign-ins (a no-op on a fresh database): the former view, read before it is replaced below.
insert into sign_in_travel_candidates
select tenant_id, user_principal_name, id, created_date_time, previous_id, previous_created_date_time,
  previous_country_or_region, previous_city, previous_ip_address, country_or_region, city, ip_address,
  distance_km, minutes_between, speed_kmh
from v_impossible_travel_candidates;

create or replace view v_impossible_travel_candidates as
select tenant_id, user_principal_name, id, created_date_time, previous_id, previous_created_date_time,
  previous_country_or_region, previous_city, previous_ip_address, country_or_region, city, ip_address,
  distance_km, minutes_between, speed_kmh
from sign_in_travel_candidates;

-- ---------------------------------------------------------------------------------------------------------------
-- Failures and password spray: partial covering indexes, so the 30-day aggregates read only index pages (the
-- indexes they replace held the bucket alone and sent every failed row back to the heap).

create index sign_ins_failed_hour_covering_idx on sign_ins (signin_hour(created_date_time), tenant_id)
  include (status_error_code, status_failure_reason, user_principal_name, app_display_name, ip_address, created_date_time)
  where status_error_code <> 0;
create index sign_ins_failed_day_covering_idx on sign_ins (signin_day(created_date_time), tenant_id)
  include (status_error_code, status_failure_reason, user_principal_name, app_display_name, ip_address, created_date_time)
  where status_error_code <> 0;
drop index sign_ins_failed_hour_idx, sign_ins_failed_day_idx;

create index sign_ins_spray_idx on sign_ins (signin_hour(created_date_time), tenant_id, ip_address)
  include (user_principal_name, status_error_code, location_country_or_region, app_display_name, created_date_time)
  where status_error_code in (50126, 50053, 50055, 50056, 50034, 50057) and ip_address <> '';

-- ---------------------------------------------------------------------------------------------------------------
-- Indexes no view reads any more (the rollups and the travel table answer them), which cost every upsert and most
-- of the disk: at 1 M sign-ins the CA child index alone was 630 MB of 6.6 GB. Ad-hoc time-range queries on the child
-- tables get BRIN indexes instead (kilobytes; rows arrive roughly in time order); sign_ins keeps
-- sign_ins_tenant_created_idx for them.
drop index sign_ins_hour_covering_idx, sign_ins_travel_time_idx, sign_in_ca_policies_day_idx,
  sign_in_authentication_details_day_idx;
create index sign_in_ca_policies_time_brin on sign_in_ca_policies using brin (created_date_time);
create index sign_in_authentication_details_time_brin on sign_in_authentication_details using brin (created_date_time);

-- Down Migration
drop index if exists sign_in_ca_policies_time_brin, sign_in_authentication_details_time_brin;
create index if not exists sign_ins_hour_covering_idx on sign_ins (signin_hour(created_date_time), tenant_id)
  include (sign_in_event_type, status_error_code, location_country_or_region, location_state, location_city,
    location_latitude, location_longitude);
create index if not exists sign_ins_travel_time_idx on sign_ins (created_date_time, tenant_id)
  include (user_principal_name, location_latitude, location_longitude, location_country_or_region, location_city,
    ip_address, id)
  where is_interactive and status_error_code = 0 and location_latitude is not null and location_longitude is not null;
create index if not exists sign_in_ca_policies_day_idx on sign_in_ca_policies (signin_day(created_date_time), tenant_id)
  include (policy_id, result, policy_name);
create index if not exists sign_in_authentication_details_day_idx on sign_in_authentication_details
  (signin_day(created_date_time), tenant_id) include (step_requirement, authentication_method, succeeded);
drop index if exists sign_ins_spray_idx;
create index if not exists sign_ins_failed_hour_idx on sign_ins (signin_hour(created_date_time), tenant_id)
  where status_error_code <> 0;
create index if not exists sign_ins_failed_day_idx on sign_ins (signin_day(created_date_time), tenant_id)
  where status_error_code <> 0;
drop index if exists sign_ins_failed_hour_covering_idx, sign_ins_failed_day_covering_idx;

create or replace view v_impossible_travel_candidates as
select b.tenant_id, b.user_principal_name, b.id, b.created_date_time,
  a.id as previous_id, a.created_date_time as previous_created_date_time,
  a.location_country_or_region as previous_country_or_region, a.location_city as previous_city,
  a.ip_address as previous_ip_address,
  b.location_country_or_region as country_or_region, b.location_city as city, b.ip_address,
  round(a.distance_km::numeric, 1) as distance_km,
  round((extract(epoch from b.created_date_time - a.created_date_time) / 60)::numeric, 1) as minutes_between,
  round((a.distance_km / greatest(extract(epoch from b.created_date_time - a.created_date_time), 60) * 3600)::numeric, 0)
    as speed_kmh
from sign_ins b
cross join lateral (
  select p.id, p.created_date_time, p.location_country_or_region, p.location_city, p.ip_address,
    signin_distance_km(p.location_latitude, p.location_longitude, b.location_latitude, b.location_longitude) as distance_km
  from sign_ins p
  where p.tenant_id = b.tenant_id and p.user_principal_name = b.user_principal_name
    and p.created_date_time < b.created_date_time and p.created_date_time > b.created_date_time - interval '24 hours'
    and p.is_interactive and p.status_error_code = 0 and p.location_latitude is not null and p.location_longitude is not null
  order by p.created_date_time desc
  limit 1
) a
where b.is_interactive and b.status_error_code = 0 and b.location_latitude is not null and b.location_longitude is not null
  and a.distance_km > 500
  and a.distance_km / greatest(extract(epoch from b.created_date_time - a.created_date_time), 60) * 3600 > 900;
drop trigger if exists sign_ins_travel_insert on sign_ins;
drop trigger if exists sign_ins_travel_update on sign_ins;
drop function if exists signin_write_travel_candidates(), signin_travel_pairs(signin_travel_key[]);
drop table if exists sign_in_travel_candidates;
drop type if exists signin_travel_key;

create or replace view v_mfa_outcomes_daily as
select tenant_id, signin_day(created_date_time) as day, authentication_method, succeeded,
  count(*) as steps
from sign_in_authentication_details
where step_requirement ilike '%multifactor%'
group by tenant_id, signin_day(created_date_time), authentication_method, succeeded;
drop trigger if exists sign_ins_rollups_mfa_insert on sign_ins;
drop trigger if exists sign_ins_rollups_mfa_update on sign_ins;
drop function if exists signin_write_mfa_rollup();
drop table if exists sign_in_mfa_rollup_daily;
