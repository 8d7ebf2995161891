-- Up Migration
-- The analytics layer (docs/schema.md): child rows for the arrays analysts unnest, first-seen countries, stable views
-- for people and dashboards, the indexes those views need, and the read-only role signin_reader.

-- ---------------------------------------------------------------------------------------------------------------
-- Helpers (immutable, so indexes can be built on them; SQL functions are inlined by the planner).

-- UTC hour / day a timestamp falls in. date_bin on timestamptz is immutable (date_trunc is not: it uses TimeZone).
create function signin_hour(ts timestamptz) returns timestamptz
language sql immutable parallel safe as $$
  select date_bin('1 hour', ts, timestamptz '2000-01-01 00:00:00+00')
$$;

create function signin_day(ts timestamptz) returns timestamptz
language sql immutable parallel safe as $$
  select date_bin('1 day', ts, timestamptz '2000-01-01 00:00:00+00')
$$;

-- An array as sent, or an empty array when Graph sent null, an object or a scalar instead.
create function signin_array(j jsonb) returns jsonb
language sql immutable parallel safe as $$
  select case when jsonb_typeof(j) = 'array' then j else '[]'::jsonb end
$$;

-- The elements of a JSON array as text[] (strings unquoted, other elements as JSON text); null when not an array.
create function signin_text_array(j jsonb) returns text[]
language sql immutable parallel safe as $$
  select case when jsonb_typeof(j) = 'array' then array(select jsonb_array_elements_text(j)) end
$$;

-- A timestamp from text, or null when it does not parse (child rows must never fail an upsert).
create function signin_timestamptz(t text) returns timestamptz
language plpgsql stable parallel safe as $$
begin
  if t is null or t !~ '^\d{4}-\d{2}-\d{2}T' then
    return null;
  end if;
  return t::timestamptz;
exception when others then
  return null;
end
$$;

-- Great-circle (haversine) distance in km on a sphere of the Earth's mean radius.
create function signin_distance_km(lat1 double precision, lon1 double precision, lat2 double precision,
  lon2 double precision) returns double precision
language sql immutable parallel safe as $$
  select 2 * 6371.0088 * asin(least(1.0, sqrt(
    power(sin(radians(lat2 - lat1) / 2), 2) + cos(radians(lat1)) * cos(radians(lat2)) * power(sin(radians(lon2 - lon1) / 2), 2))))
$$;

-- ---------------------------------------------------------------------------------------------------------------
-- Child rows, partitioned by month exactly like sign_ins (same bounds, same retention), keyed by the parent key.
-- Written only by the statement triggers below, in the same statement as the upsert, so they cannot disagree with raw.

create table sign_in_ca_policies (
  tenant_id text not null,
  sign_in_id text not null,
  created_date_time timestamptz not null,
  -- 1-based position in raw.appliedConditionalAccessPolicies.
  ordinal integer not null,
  policy_id text,
  policy_name text,
  -- success, failure, notApplied, notEnabled, reportOnly…, unknownFutureValue (evolvable: text).
  result text,
  enforced_grant_controls text[],
  enforced_session_controls text[],
  primary key (tenant_id, sign_in_id, created_date_time, ordinal)
) partition by range (created_date_time);
create table sign_in_ca_policies_default partition of sign_in_ca_policies default;

create table sign_in_risk_events (
  tenant_id text not null,
  sign_in_id text not null,
  created_date_time timestamptz not null,
  -- From riskEventTypes_v2, or the legacy riskEventTypes when v2 is absent or empty.
  risk_event_type text not null,
  primary key (tenant_id, sign_in_id, created_date_time, risk_event_type)
) partition by range (created_date_time);
create table sign_in_risk_events_default partition of sign_in_risk_events default;

create table sign_in_authentication_details (
  tenant_id text not null,
  sign_in_id text not null,
  created_date_time timestamptz not null,
  -- 1-based position in raw.authenticationDetails (beta only; v1.0 events have none).
  ordinal integer not null,
  step_date_time timestamptz,
  authentication_method text,
  authentication_method_detail text,
  succeeded boolean,
  step_result_detail text,
  step_requirement text,
  primary key (tenant_id, sign_in_id, created_date_time, ordinal)
) partition by range (created_date_time);
create table sign_in_authentication_details_default partition of sign_in_authentication_details default;

-- The first successful sign-in of each user from each country (kept across retention: "first ever seen").
create table user_countries (
  tenant_id text not null,
  user_principal_name text not null,
  country_or_region text not null,
  first_seen_at timestamptz not null,
  first_sign_in_id text not null,
  first_city text,
  first_ip_address text,
  primary key (tenant_id, user_principal_name, country_or_region)
);
create index user_countries_first_seen_idx on user_countries (first_seen_at, tenant_id);

-- Fills the child tables from the rows one INSERT … ON CONFLICT statement inserted or changed. Statement-level with
-- transition tables: one set-based insert per page instead of a trigger call per row.
create function signin_write_children() returns trigger
language plpgsql as $$
begin
  if tg_op = 'UPDATE' then
    delete from sign_in_ca_policies c using old_rows o
      where c.tenant_id = o.tenant_id and c.sign_in_id = o.id and c.created_date_time = o.created_date_time;
    delete from sign_in_risk_events c using old_rows o
      where c.tenant_id = o.tenant_id and c.sign_in_id = o.id and c.created_date_time = o.created_date_time;
    delete from sign_in_authentication_details c using old_rows o
      where c.tenant_id = o.tenant_id and c.sign_in_id = o.id and c.created_date_time = o.created_date_time;
  end if;

  insert into sign_in_ca_policies (tenant_id, sign_in_id, created_date_time, ordinal, policy_id, policy_name, result,
    enforced_grant_controls, enforced_session_controls)
  select n.tenant_id, n.id, n.created_date_time, p.ordinal, signin_text(p.v -> 'id'), signin_text(p.v -> 'displayName'),
    signin_text(p.v -> 'result'), signin_text_array(p.v -> 'enforcedGrantControls'),
    signin_text_array(p.v -> 'enforcedSessionControls')
  from new_rows n
  cross join lateral jsonb_array_elements(signin_array(n.raw -> 'appliedConditionalAccessPolicies')) with ordinality as p(v, ordinal);

  insert into sign_in_risk_events (tenant_id, sign_in_id, created_date_time, risk_event_type)
  select distinct n.tenant_id, n.id, n.created_date_time, t.risk_event_type
  from new_rows n
  cross join lateral unnest(coalesce(nullif(signin_text_array(n.raw -> 'riskEventTypes_v2'), '{}'),
    signin_text_array(n.raw -> 'riskEventTypes'))) as t(risk_event_type)
  where t.risk_event_type <> '';

  insert into sign_in_authentication_details (tenant_id, sign_in_id, created_date_time, ordinal, step_date_time,
    authentication_method, authentication_method_detail, succeeded, step_result_detail, step_requirement)
  select n.tenant_id, n.id, n.created_date_time, d.ordinal, signin_timestamptz(signin_text(d.v -> 'authenticationStepDateTime')),
    signin_text(d.v -> 'authenticationMethod'), signin_text(d.v -> 'authenticationMethodDetail'), signin_bool(d.v -> 'succeeded'),
    signin_text(d.v -> 'authenticationStepResultDetail'), signin_text(d.v -> 'authenticationStepRequirement')
  from new_rows n
  cross join lateral jsonb_array_elements(signin_array(n.raw -> 'authenticationDetails')) with ordinality as d(v, ordinal);

  -- Sorted so concurrent writers lock keys in the same order (no deadlocks); only an earlier sighting updates.
  insert into user_countries as u (tenant_id, user_principal_name, country_or_region, first_seen_at, first_sign_in_id,
    first_city, first_ip_address)
  select distinct on (n.tenant_id, n.user_principal_name, n.location_country_or_region)
    n.tenant_id, n.user_principal_name, n.location_country_or_region, n.created_date_time, n.id,
    nullif(n.location_city, ''), nullif(n.ip_address, '')
  from new_rows n
  where n.status_error_code = 0 and n.user_principal_name <> '' and n.location_country_or_region <> ''
  order by n.tenant_id, n.user_principal_name, n.location_country_or_region, n.created_date_time, n.id
  on conflict (tenant_id, user_principal_name, country_or_region) do update
    set first_seen_at = excluded.first_seen_at, first_sign_in_id = excluded.first_sign_in_id,
        first_city = excluded.first_city, first_ip_address = excluded.first_ip_address
    where excluded.first_seen_at < u.first_seen_at;
  return null;
end
$$;

create trigger sign_ins_children_insert after insert on sign_ins
  referencing new table as new_rows for each statement execute function signin_write_children();
create trigger sign_ins_children_update after update on sign_ins
  referencing old table as old_rows new table as new_rows for each statement execute function signin_write_children();

-- ---------------------------------------------------------------------------------------------------------------
-- Partition maintenance now covers the child tables too (same month, same bounds). Replaces 0001's version; the
-- signature and behaviour for sign_ins are unchanged. Strays caught by a default partition move to the new month.
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
    -- Columns that can be written (generated columns are recomputed on insert).
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

-- Months that already exist get their child partitions now (a database migrated with data from 0001).
do $$
declare
  m record;
begin
  for m in
    select substring(c.relname from 'sign_ins_(\d{4}_\d{2})$') as suffix
    from pg_inherits i join pg_class c on c.oid = i.inhrelid
    where i.inhparent = 'sign_ins'::regclass and c.relname ~ '^sign_ins_\d{4}_\d{2}$'
  loop
    perform signin_ensure_partition(to_date(m.suffix || '_01', 'YYYY_MM_DD')::timestamp at time zone 'UTC');
  end loop;
end
$$;

-- Existing sign-ins get their child rows (a no-op on a fresh database).
insert into sign_in_ca_policies (tenant_id, sign_in_id, created_date_time, ordinal, policy_id, policy_name, result,
  enforced_grant_controls, enforced_session_controls)
select n.tenant_id, n.id, n.created_date_time, p.ordinal, signin_text(p.v -> 'id'), signin_text(p.v -> 'displayName'),
  signin_text(p.v -> 'result'), signin_text_array(p.v -> 'enforcedGrantControls'), signin_text_array(p.v -> 'enforcedSessionControls')
from sign_ins n
cross join lateral jsonb_array_elements(signin_array(n.raw -> 'appliedConditionalAccessPolicies')) with ordinality as p(v, ordinal);
insert into sign_in_risk_events (tenant_id, sign_in_id, created_date_time, risk_event_type)
select distinct n.tenant_id, n.id, n.created_date_time, t.risk_event_type
from sign_ins n
cross join lateral unnest(coalesce(nullif(signin_text_array(n.raw -> 'riskEventTypes_v2'), '{}'),
  signin_text_array(n.raw -> 'riskEventTypes'))) as t(risk_event_type)
where t.risk_event_type <> '';
insert into sign_in_authentication_details (tenant_id, sign_in_id, created_date_time, ordinal, step_date_time,
  authentication_method, authentication_method_detail, succeeded, step_result_detail, step_requirement)
select n.tenant_id, n.id, n.created_date_time, d.ordinal, signin_timestamptz(signin_text(d.v -> 'authenticationStepDateTime')),
  signin_text(d.v -> 'authenticationMethod'), signin_text(d.v -> 'authenticationMethodDetail'), signin_bool(d.v -> 'succeeded'),
  signin_text(d.v -> 'authenticationStepResultDetail'), signin_text(d.v -> 'authenticationStepRequirement')
from sign_ins n
cross join lateral jsonb_array_elements(signin_array(n.raw -> 'authenticationDetails')) with ordinality as d(v, ordinal);
insert into user_countries (tenant_id, user_principal_name, country_or_region, first_seen_at, first_sign_in_id, first_city,
  first_ip_address)
select distinct on (n.tenant_id, n.user_principal_name, n.location_country_or_region)
  n.tenant_id, n.user_principal_name, n.location_country_or_region, n.created_date_time, n.id, nullif(n.location_city, ''),
  nullif(n.ip_address, '')
from sign_ins n
where n.status_error_code = 0 and n.user_principal_name <> '' and n.location_country_or_region <> ''
order by n.tenant_id, n.user_principal_name, n.location_country_or_region, n.created_date_time, n.id;

-- Citus readiness: every primary key includes tenant_id (cycles was keyed by its identity alone).
alter table cycles drop constraint cycles_pkey, add primary key (tenant_id, id);

-- ---------------------------------------------------------------------------------------------------------------
-- Indexes for the views (partitioned indexes: created on every existing and future partition). Chosen by EXPLAIN on
-- the benchmark's volume (docs/performance-views.md). Hour/day buckets are indexed as expressions so a caller's
-- filter on a view's bucket column becomes an index range scan in every partition.

-- Volume and map: one covering index, read by index-only scans.
create index sign_ins_hour_covering_idx on sign_ins (signin_hour(created_date_time), tenant_id)
  include (sign_in_event_type, status_error_code, location_country_or_region, location_state, location_city,
    location_latitude, location_longitude);
-- Failures per hour (also password spray) and per day.
create index sign_ins_failed_hour_idx on sign_ins (signin_hour(created_date_time), tenant_id) where status_error_code <> 0;
create index sign_ins_failed_day_idx on sign_ins (signin_day(created_date_time), tenant_id) where status_error_code <> 0;
create index sign_ins_legacy_day_idx on sign_ins (signin_day(created_date_time), tenant_id) where is_legacy_auth;
create index sign_ins_service_principal_day_idx on sign_ins (signin_day(created_date_time), tenant_id)
  where sign_in_event_type in ('servicePrincipal', 'managedIdentity');
create index sign_ins_risky_idx on sign_ins (created_date_time, tenant_id)
  where risk_level_during_sign_in in ('low', 'medium', 'high') or risk_level_aggregated in ('low', 'medium', 'high')
    or risk_state in ('atRisk', 'confirmedCompromised');
-- Impossible travel: the later sign-in by time, the earlier one by user (index-only probes).
create index sign_ins_travel_time_idx on sign_ins (created_date_time, tenant_id)
  include (user_principal_name, location_latitude, location_longitude, location_country_or_region, location_city,
    ip_address, id)
  where is_interactive and status_error_code = 0 and location_latitude is not null and location_longitude is not null;
create index sign_ins_travel_user_idx on sign_ins (tenant_id, user_principal_name, created_date_time)
  include (location_latitude, location_longitude, location_country_or_region, location_city, ip_address, id)
  where is_interactive and status_error_code = 0 and location_latitude is not null and location_longitude is not null;
-- Conditional Access and MFA outcomes per day.
create index sign_in_ca_policies_day_idx on sign_in_ca_policies (signin_day(created_date_time), tenant_id)
  include (policy_id, result, policy_name);
create index sign_in_authentication_details_day_idx on sign_in_authentication_details (signin_day(created_date_time), tenant_id)
  include (step_requirement, authentication_method, succeeded);
create index sign_in_risk_events_time_idx on sign_in_risk_events (created_date_time, tenant_id);

-- ---------------------------------------------------------------------------------------------------------------
-- Views: a contract (columns are added, never renamed or removed). Each filters on a bucket or created_date_time the
-- caller supplies; none aggregates the whole table before the caller's filter applies. Documented in docs/schema.md.

create view v_sign_in_volume_hourly as
select tenant_id, signin_hour(created_date_time) as hour, sign_in_event_type,
  count(*) as sign_ins,
  count(*) filter (where status_error_code <> 0) as failures
from sign_ins
group by tenant_id, signin_hour(created_date_time), sign_in_event_type;

create view v_sign_ins_by_location_hourly as
select tenant_id, signin_hour(created_date_time) as hour,
  location_country_or_region as country_or_region, location_state as state, location_city as city,
  location_latitude as latitude, location_longitude as longitude,
  count(*) as sign_ins,
  count(*) filter (where status_error_code <> 0) as failures
from sign_ins
group by tenant_id, signin_hour(created_date_time), location_country_or_region, location_state, location_city,
  location_latitude, location_longitude;

create view v_failed_sign_ins_hourly as
select tenant_id, signin_hour(created_date_time) as hour, status_error_code as error_code,
  status_failure_reason as failure_reason, user_principal_name, app_display_name,
  count(*) as failures,
  count(distinct ip_address) as distinct_ips,
  max(created_date_time) as last_failure_at
from sign_ins
where status_error_code <> 0
group by tenant_id, signin_hour(created_date_time), status_error_code, status_failure_reason, user_principal_name,
  app_display_name;

create view v_failed_sign_ins_daily as
select tenant_id, signin_day(created_date_time) as day, status_error_code as error_code,
  status_failure_reason as failure_reason, user_principal_name, app_display_name,
  count(*) as failures,
  count(distinct ip_address) as distinct_ips,
  max(created_date_time) as last_failure_at
from sign_ins
where status_error_code <> 0
group by tenant_id, signin_day(created_date_time), status_error_code, status_failure_reason, user_principal_name,
  app_display_name;

create view v_legacy_auth_daily as
select tenant_id, signin_day(created_date_time) as day, user_principal_name, client_app_used,
  count(*) as sign_ins,
  count(*) filter (where status_error_code = 0) as successes,
  count(*) filter (where status_error_code <> 0) as failures,
  max(created_date_time) as last_seen_at
from sign_ins
where is_legacy_auth
group by tenant_id, signin_day(created_date_time), user_principal_name, client_app_used;

create view v_ca_policy_outcomes_daily as
select tenant_id, signin_day(created_date_time) as day, policy_id, max(policy_name) as policy_name, result,
  count(*) as sign_ins
from sign_in_ca_policies
group by tenant_id, signin_day(created_date_time), policy_id, result;

create view v_mfa_outcomes_daily as
select tenant_id, signin_day(created_date_time) as day, authentication_method, succeeded,
  count(*) as steps
from sign_in_authentication_details
where step_requirement ilike '%multifactor%'
group by tenant_id, signin_day(created_date_time), authentication_method, succeeded;

create view v_risky_sign_ins as
select s.tenant_id, s.id, s.created_date_time, s.user_principal_name, s.app_display_name, s.ip_address,
  s.location_country_or_region as country_or_region, s.location_city as city,
  s.risk_level_during_sign_in, s.risk_level_aggregated, s.risk_state, s.risk_detail,
  s.status_error_code as error_code, s.conditional_access_status,
  array(select r.risk_event_type from sign_in_risk_events r
        where r.tenant_id = s.tenant_id and r.sign_in_id = s.id and r.created_date_time = s.created_date_time
        order by 1) as risk_event_types
from sign_ins s
where s.risk_level_during_sign_in in ('low', 'medium', 'high') or s.risk_level_aggregated in ('low', 'medium', 'high')
  or s.risk_state in ('atRisk', 'confirmedCompromised');

-- Many distinct users failing primary authentication from one IP within one UTC hour (threshold: 10 users).
create view v_password_spray_candidates as
select tenant_id, signin_hour(created_date_time) as hour, ip_address,
  count(distinct user_principal_name) as distinct_users,
  count(*) as failures,
  min(created_date_time) as first_attempt_at,
  max(created_date_time) as last_attempt_at,
  array_agg(distinct location_country_or_region) filter (where location_country_or_region <> '') as countries,
  array_agg(distinct app_display_name) filter (where app_display_name <> '') as apps,
  array_agg(distinct status_error_code) as error_codes
from sign_ins
where status_error_code in (50126, 50053, 50055, 50056, 50034, 50057)
  and ip_address <> ''
group by tenant_id, signin_hour(created_date_time), ip_address
having count(distinct user_principal_name) >= 10;

-- The previous successful interactive sign-in of the same user (within 24 h) was so far away that the implied
-- speed exceeds an airliner's (> 900 km/h over > 500 km). created_date_time is the later sign-in's.
create view v_impossible_travel_candidates as
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

create view v_first_time_countries as
select tenant_id, user_principal_name, country_or_region, first_seen_at, first_sign_in_id, first_city, first_ip_address,
  exists (select 1 from user_countries o
          where o.tenant_id = u.tenant_id and o.user_principal_name = u.user_principal_name
            and o.first_seen_at < u.first_seen_at) as user_seen_before
from user_countries u;

create view v_service_principal_activity_daily as
select tenant_id, signin_day(created_date_time) as day, sign_in_event_type,
  service_principal_id, max(service_principal_name) as service_principal_name, app_id, resource_display_name,
  count(*) as sign_ins,
  count(*) filter (where status_error_code <> 0) as failures,
  count(distinct ip_address) filter (where ip_address <> '') as distinct_ips,
  max(created_date_time) as last_seen_at
from sign_ins
where sign_in_event_type in ('servicePrincipal', 'managedIdentity')
group by tenant_id, signin_day(created_date_time), sign_in_event_type, service_principal_id, app_id, resource_display_name;

-- Per tenant and stream: how far the copy reaches and how the daemon is doing (tiny tables: no time filter needed).
create view v_data_freshness as
with streams as (
  select tenant_id, stream from checkpoints
  union
  select distinct tenant_id, stream from cycles
)
select st.tenant_id, st.stream,
  c.position as checkpoint,
  now() - c.position as checkpoint_lag,
  c.updated_at as checkpoint_updated_at,
  ok.finished_at as last_success_at,
  bad.finished_at as last_failure_at,
  bad.error as last_error,
  last.outcome as last_outcome,
  last.finished_at as last_cycle_at
from streams st
left join checkpoints c on c.tenant_id = st.tenant_id and c.stream = st.stream
left join lateral (select finished_at from cycles y where y.tenant_id = st.tenant_id and y.stream = st.stream
  and y.outcome = 'success' order by finished_at desc limit 1) ok on true
left join lateral (select finished_at, error from cycles y where y.tenant_id = st.tenant_id and y.stream = st.stream
  and y.outcome <> 'success' order by finished_at desc limit 1) bad on true
left join lateral (select outcome, finished_at from cycles y where y.tenant_id = st.tenant_id and y.stream = st.stream
  order by finished_at desc limit 1) last on true;

-- ---------------------------------------------------------------------------------------------------------------
-- signin_reader: the read-only role for BI tools (NOLOGIN; logins are members, docs/access.md). Roles are
-- cluster-wide: creating it is idempotent and tolerates a concurrent migration of another database; without
-- CREATEROLE the migration only leaves a NOTICE, and grants happen once an administrator creates the role.
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'signin_reader') then
    if exists (select 1 from pg_roles where rolname = current_user and (rolsuper or rolcreaterole)) then
      begin
        create role signin_reader nologin;
      exception when duplicate_object or unique_violation then
        null; -- created meanwhile by a migration of another database in this cluster
      end;
    else
      raise notice 'signin_reader not created: role % lacks CREATEROLE (create it as in docs/access.md, then re-grant)', current_user;
      return;
    end if;
  end if;
  grant usage on schema public to signin_reader;
  grant select on all tables in schema public to signin_reader;
  -- Tables and views created later by this (migrating) role are covered too. Partitions need no grant: queries
  -- through the parent check only the parent's privileges.
  alter default privileges in schema public grant select on tables to signin_reader;
exception when insufficient_privilege then
  raise notice 'signin_reader grants skipped: %', sqlerrm;
end
$$;

-- Down Migration
-- (signin_ensure_partition keeps the child-table version; cycles keeps its (tenant_id, id) key.)
drop view if exists v_data_freshness, v_service_principal_activity_daily, v_first_time_countries,
  v_impossible_travel_candidates, v_password_spray_candidates, v_risky_sign_ins, v_mfa_outcomes_daily,
  v_ca_policy_outcomes_daily, v_legacy_auth_daily, v_failed_sign_ins_daily, v_failed_sign_ins_hourly,
  v_sign_ins_by_location_hourly, v_sign_in_volume_hourly;
drop trigger if exists sign_ins_children_insert on sign_ins;
drop trigger if exists sign_ins_children_update on sign_ins;
drop table if exists user_countries, sign_in_authentication_details, sign_in_risk_events, sign_in_ca_policies;
drop function if exists signin_write_children(), signin_distance_km(double precision, double precision, double precision,
  double precision), signin_timestamptz(text), signin_text_array(jsonb), signin_array(jsonb), signin_day(timestamptz),
  signin_hour(timestamptz);
