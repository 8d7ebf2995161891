-- Up Migration
-- signin-ingest base schema: sign-ins (partitioned by month), checkpoints, rejected events, cycle history.

-- Type-drift-tolerant extractors used by the generated columns. Graph sometimes sends a field as a string, sometimes
-- as an object or null; these return null instead of failing, so one odd event never blocks a page.
create function signin_text(j jsonb) returns text
language sql immutable parallel safe as $$
  select case jsonb_typeof(j) when 'string' then j #>> '{}' when 'number' then j #>> '{}' when 'boolean' then j #>> '{}' end
$$;

create function signin_bool(j jsonb) returns boolean
language sql immutable parallel safe as $$
  select case jsonb_typeof(j)
    when 'boolean' then (j #>> '{}')::boolean
    when 'string' then case lower(j #>> '{}') when 'true' then true when 'false' then false end
  end
$$;

create function signin_int(j jsonb) returns integer
language sql immutable parallel safe as $$
  select case when jsonb_typeof(j) in ('number', 'string') and (j #>> '{}') ~ '^\s*-?\d{1,9}\s*$'
    then (j #>> '{}')::integer end
$$;

create function signin_float(j jsonb) returns double precision
language sql immutable parallel safe as $$
  select case when jsonb_typeof(j) in ('number', 'string') and (j #>> '{}') ~ '^\s*-?\d+(\.\d+)?([eE][-+]?\d+)?\s*$'
    then (j #>> '{}')::double precision end
$$;

-- Graph redacts some addresses ("10.1.2.XXX") and may send garbage; only a valid address becomes inet.
create function signin_inet(t text) returns inet
language plpgsql immutable parallel safe as $$
begin
  if t is null or t !~ '^[0-9A-Fa-f:.]{2,45}$' then
    return null;
  end if;
  return t::inet;
exception when others then
  return null;
end
$$;

-- Client apps that use legacy (basic) authentication, as Entra ID's sign-in log names them.
create function signin_is_legacy_client(client_app text) returns boolean
language sql immutable parallel safe as $$
  select lower(client_app) = any (array[
    'exchange activesync', 'imap', 'imap4', 'pop', 'pop3', 'smtp', 'authenticated smtp', 'mapi', 'mapi over http',
    'autodiscover', 'exchange online powershell', 'exchange web services', 'offline address book',
    'outlook anywhere (rpc over http)', 'outlook service', 'reporting web services', 'other clients'
  ])
$$;

create table sign_ins (
  tenant_id text not null,
  id text not null,
  created_date_time timestamptz not null,
  -- The stream (query) that returned the event: interactiveUser, nonInteractiveUser, servicePrincipal, managedIdentity.
  stream text not null,
  -- The event as Graph sent it. Every typed column below is generated from it, so they can never disagree.
  raw jsonb not null,
  first_seen_at timestamptz not null,
  last_changed_at timestamptz not null,
  -- 1 when first stored; +1 each time Graph re-published the event with different content.
  revision integer not null default 1,
  user_principal_name text generated always as (signin_text(raw -> 'userPrincipalName')) stored,
  user_display_name text generated always as (signin_text(raw -> 'userDisplayName')) stored,
  user_id text generated always as (signin_text(raw -> 'userId')) stored,
  user_type text generated always as (signin_text(raw -> 'userType')) stored,
  app_id text generated always as (signin_text(raw -> 'appId')) stored,
  app_display_name text generated always as (signin_text(raw -> 'appDisplayName')) stored,
  resource_id text generated always as (signin_text(raw -> 'resourceId')) stored,
  resource_display_name text generated always as (signin_text(raw -> 'resourceDisplayName')) stored,
  service_principal_id text generated always as (signin_text(raw -> 'servicePrincipalId')) stored,
  service_principal_name text generated always as (signin_text(raw -> 'servicePrincipalName')) stored,
  ip_address text generated always as (signin_text(raw -> 'ipAddress')) stored,
  ip inet generated always as (signin_inet(signin_text(raw -> 'ipAddress'))) stored,
  client_app_used text generated always as (signin_text(raw -> 'clientAppUsed')) stored,
  is_legacy_auth boolean generated always as (signin_is_legacy_client(signin_text(raw -> 'clientAppUsed'))) stored,
  correlation_id text generated always as (signin_text(raw -> 'correlationId')) stored,
  conditional_access_status text generated always as (signin_text(raw -> 'conditionalAccessStatus')) stored,
  is_interactive boolean generated always as (signin_bool(raw -> 'isInteractive')) stored,
  sign_in_event_type text generated always as (coalesce(signin_text(raw -> 'signInEventTypes' -> 0), stream)) stored,
  authentication_requirement text generated always as (signin_text(raw -> 'authenticationRequirement')) stored,
  risk_detail text generated always as (signin_text(raw -> 'riskDetail')) stored,
  risk_level_aggregated text generated always as (signin_text(raw -> 'riskLevelAggregated')) stored,
  risk_level_during_sign_in text generated always as (signin_text(raw -> 'riskLevelDuringSignIn')) stored,
  risk_state text generated always as (signin_text(raw -> 'riskState')) stored,
  status_error_code integer generated always as (signin_int(raw -> 'status' -> 'errorCode')) stored,
  status_failure_reason text generated always as (signin_text(raw -> 'status' -> 'failureReason')) stored,
  status_additional_details text generated always as (signin_text(raw -> 'status' -> 'additionalDetails')) stored,
  location_city text generated always as (signin_text(raw -> 'location' -> 'city')) stored,
  location_state text generated always as (signin_text(raw -> 'location' -> 'state')) stored,
  location_country_or_region text generated always as (signin_text(raw -> 'location' -> 'countryOrRegion')) stored,
  location_latitude double precision generated always as (signin_float(raw -> 'location' -> 'geoCoordinates' -> 'latitude')) stored,
  location_longitude double precision generated always as (signin_float(raw -> 'location' -> 'geoCoordinates' -> 'longitude')) stored,
  device_id text generated always as (signin_text(raw -> 'deviceDetail' -> 'deviceId')) stored,
  device_display_name text generated always as (signin_text(raw -> 'deviceDetail' -> 'displayName')) stored,
  device_operating_system text generated always as (signin_text(raw -> 'deviceDetail' -> 'operatingSystem')) stored,
  device_browser text generated always as (signin_text(raw -> 'deviceDetail' -> 'browser')) stored,
  device_is_compliant boolean generated always as (signin_bool(raw -> 'deviceDetail' -> 'isCompliant')) stored,
  device_is_managed boolean generated always as (signin_bool(raw -> 'deviceDetail' -> 'isManaged')) stored,
  device_trust_type text generated always as (signin_text(raw -> 'deviceDetail' -> 'trustType')) stored,
  -- Partitioning requires the partition key in every unique key; an id keeps one createdDateTime in Graph.
  primary key (tenant_id, id, created_date_time)
) partition by range (created_date_time);

create table sign_ins_default partition of sign_ins default;

create index sign_ins_tenant_created_idx on sign_ins (tenant_id, created_date_time desc);
create index sign_ins_user_idx on sign_ins (tenant_id, user_principal_name, created_date_time desc);

-- Creates the monthly partition holding `at` if it is missing, moving any rows the default partition already
-- caught for that month. Called by the daemon ahead of every window, so normally the default stays empty.
create function signin_ensure_partition(at timestamptz) returns text
language plpgsql as $$
declare
  month_start timestamptz := date_trunc('month', at at time zone 'UTC') at time zone 'UTC';
  month_end timestamptz := month_start + interval '1 month';
  name text := format('sign_ins_%s', to_char(month_start at time zone 'UTC', 'YYYY_MM'));
begin
  if to_regclass(name) is not null then
    return name;
  end if;
  perform pg_advisory_xact_lock(hashtext('signin_ensure_partition'));
  if to_regclass(name) is not null then
    return name;
  end if;
  execute format('create table %I (like sign_ins including defaults including generated)', name);
  execute format(
    'with moved as (delete from sign_ins_default where created_date_time >= $1 and created_date_time < $2 returning *)
     insert into %I (tenant_id, id, created_date_time, stream, raw, first_seen_at, last_changed_at, revision)
     select tenant_id, id, created_date_time, stream, raw, first_seen_at, last_changed_at, revision from moved', name)
    using month_start, month_end;
  execute format('alter table sign_ins attach partition %I for values from (%L) to (%L)', name, month_start, month_end);
  return name;
end
$$;

-- Per (tenant, stream): everything Graph showed with createdDateTime <= position has been read and stored.
create table checkpoints (
  tenant_id text not null,
  stream text not null,
  position timestamptz not null,
  updated_at timestamptz not null,
  primary key (tenant_id, stream)
);

-- Events that could not be stored (no id, unparsable createdDateTime, not an object), kept with the reason.
create table rejected_events (
  tenant_id text not null,
  stream text not null,
  raw_hash text not null,
  reason text not null,
  raw_text text not null,
  first_seen_at timestamptz not null,
  last_seen_at timestamptz not null,
  times_seen integer not null default 1,
  primary key (tenant_id, raw_hash)
);

-- One row per finished cycle: what it read and how it ended. `status` and readiness read the latest rows.
create table cycles (
  id bigint generated always as identity primary key,
  tenant_id text not null,
  stream text not null,
  started_at timestamptz not null,
  finished_at timestamptz not null,
  outcome text not null,
  window_from timestamptz,
  window_to timestamptz,
  pages integer not null default 0,
  fetched integer not null default 0,
  inserted integer not null default 0,
  updated integer not null default 0,
  unchanged integer not null default 0,
  rejected integer not null default 0,
  error text
);
create index cycles_tenant_stream_idx on cycles (tenant_id, stream, finished_at desc);

-- Down Migration
drop table if exists cycles, rejected_events, checkpoints, sign_ins;
drop function if exists signin_ensure_partition(timestamptz), signin_is_legacy_client(text), signin_inet(text),
  signin_float(jsonb), signin_int(jsonb), signin_bool(jsonb), signin_text(jsonb);
