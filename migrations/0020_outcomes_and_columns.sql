-- Up Migration
-- Issue 13 (right on real tenants), part 1:
--   * one classification of status.errorCode (signin_outcome) used wherever failures are counted: real tenants are
--     dominated by interrupts (50140 "keep me signed in", 50074/50076 "MFA required", 16000 account picker, …) that
--     are steps of a sign-in, not failures; until now every code <> 0 counted as a failure;
--   * typed columns for the beta properties detections need (snake_case of the Graph name, generated from raw with
--     the drift-tolerant helpers: a wrong JSON type gives null, never an error), and the Graph API version each row
--     was read from (api_version, written by the upsert: it is not in the event).
-- Adding stored generated columns rewrites sign_ins once (all columns in one statement): minutes at 10 M rows.
-- Changed semantics (docs/schema.md): `failures` in v_sign_in_volume_hourly, v_sign_ins_by_location_hourly,
-- v_failed_sign_ins_*, v_legacy_auth_daily and v_service_principal_activity_daily now count is_failure only.

-- The outcome class of a status.errorCode (docs/schema.md, "Sign-in outcomes", lists each code and why):
--   success                   0
--   interrupt                 the sign-in goes on with another step (KMSI, MFA prompt or registration, account
--                             picker, silent SSO miss, session expiry, device authentication, consent, Kerberos miss)
--   correct_password_blocked  the first factor was right, then MFA, Conditional Access or password expiry stopped it
--   bad_credentials           wrong password or unknown user
--   locked                    50053 (smart lockout, or a blocked malicious IP)
--   disabled                  50057
--   other                     any other code
--   unknown                   no error code (Graph sent `status: {}` or no status)
create function signin_outcome(error_code integer) returns text
language sql immutable parallel safe as $$
  select case
    when error_code is null then 'unknown'
    when error_code = 0 then 'success'
    when error_code in (50140, 50074, 50076, 50079, 50072, 50125, 50058, 16000, 16001, 16003, 70043, 70044, 50097,
      50089, 50199, 65001, 81010, 700082) then 'interrupt'
    when error_code in (500121, 50055, 50144, 50158, 50005, 50131, 53000, 53001, 53002, 53003, 53004) then 'correct_password_blocked'
    when error_code in (50126, 50056, 50034, 50064) then 'bad_credentials'
    when error_code = 50053 then 'locked'
    when error_code = 50057 then 'disabled'
    else 'other'
  end
$$;

-- A failed sign-in: neither a success, nor an interrupt, nor without a code.
create function signin_is_failure(error_code integer) returns boolean
language sql immutable parallel safe as $$
  select signin_outcome(error_code) not in ('success', 'interrupt', 'unknown')
$$;

-- The password (first factor) was verified: a success, a block after it, or an interrupt that only comes after it
-- (MFA required or registration required, KMSI). Sentinel's password-spray rule uses the same idea for its
-- "successful principals" set.
create function signin_password_verified(error_code integer) returns boolean
language sql immutable parallel safe as $$
  select signin_outcome(error_code) in ('success', 'correct_password_blocked')
    or error_code in (50074, 50076, 50079, 50072, 50140)
$$;

alter table sign_ins
  add column outcome text generated always as (signin_outcome(signin_int(raw -> 'status' -> 'errorCode'))) stored,
  add column is_failure boolean generated always as (signin_is_failure(signin_int(raw -> 'status' -> 'errorCode'))) stored,
  add column user_agent text generated always as (signin_text(raw -> 'userAgent')) stored,
  add column authentication_protocol text generated always as (signin_text(raw -> 'authenticationProtocol')) stored,
  add column original_transfer_method text generated always as (signin_text(raw -> 'originalTransferMethod')) stored,
  add column autonomous_system_number integer generated always as (signin_int(raw -> 'autonomousSystemNumber')) stored,
  add column incoming_token_type text generated always as (signin_text(raw -> 'incomingTokenType')) stored,
  add column cross_tenant_access_type text generated always as (signin_text(raw -> 'crossTenantAccessType')) stored,
  add column home_tenant_id text generated always as (signin_text(raw -> 'homeTenantId')) stored,
  add column resource_tenant_id text generated always as (signin_text(raw -> 'resourceTenantId')) stored,
  add column session_id text generated always as (signin_text(raw -> 'sessionId')) stored,
  add column unique_token_identifier text generated always as (signin_text(raw -> 'uniqueTokenIdentifier')) stored,
  add column client_credential_type text generated always as (signin_text(raw -> 'clientCredentialType')) stored,
  add column service_principal_credential_key_id text
    generated always as (signin_text(raw -> 'servicePrincipalCredentialKeyId')) stored,
  add column service_principal_credential_thumbprint text
    generated always as (signin_text(raw -> 'servicePrincipalCredentialThumbprint')) stored,
  add column token_issuer_type text generated always as (signin_text(raw -> 'tokenIssuerType')) stored,
  add column is_through_global_secure_access boolean
    generated always as (signin_bool(raw -> 'isThroughGlobalSecureAccess')) stored,
  -- 'v1.0' or 'beta': the Graph API the row's raw came from (null: imported, or stored before 0020).
  add column api_version text;

alter table directory_audits add column api_version text;

-- ---------------------------------------------------------------------------------------------------------------
-- The hourly rollup (0014) counts failures by is_failure, and now interrupts too. Rebuilt from sign_ins.

alter table sign_in_rollup_hourly add column interrupts bigint not null default 0;

create or replace function signin_write_rollups() returns trigger
language plpgsql as $$
begin
  if tg_op = 'UPDATE' then
    insert into sign_in_rollup_hourly as r (hour, tenant_id, sign_in_event_type, country_or_region, state, city, latitude,
      longitude, sign_ins, failures, interrupts)
    select signin_hour(d.created_date_time), d.tenant_id, d.sign_in_event_type, d.location_country_or_region,
      d.location_state, d.location_city, d.location_latitude, d.location_longitude, sum(d.n),
      coalesce(sum(d.n) filter (where d.is_failure), 0), coalesce(sum(d.n) filter (where d.outcome = 'interrupt'), 0)
    from (
      select o.*, -1 as n from old_rows o
      union all
      select w.*, 1 as n from new_rows w
    ) d
    group by 1, 2, 3, 4, 5, 6, 7, 8
    having sum(d.n) <> 0 or sum(d.n) filter (where d.is_failure) <> 0
      or sum(d.n) filter (where d.outcome = 'interrupt') <> 0
    order by 1, 2, 3, 4, 5, 6, 7, 8
    on conflict (hour, tenant_id, sign_in_event_type, country_or_region, state, city, latitude, longitude) do update
      set sign_ins = r.sign_ins + excluded.sign_ins, failures = r.failures + excluded.failures,
          interrupts = r.interrupts + excluded.interrupts;

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
      longitude, sign_ins, failures, interrupts)
    select signin_hour(n.created_date_time), n.tenant_id, n.sign_in_event_type, n.location_country_or_region,
      n.location_state, n.location_city, n.location_latitude, n.location_longitude, count(*),
      count(*) filter (where n.is_failure), count(*) filter (where n.outcome = 'interrupt')
    from new_rows n
    group by 1, 2, 3, 4, 5, 6, 7, 8
    order by 1, 2, 3, 4, 5, 6, 7, 8
    on conflict (hour, tenant_id, sign_in_event_type, country_or_region, state, city, latitude, longitude) do update
      set sign_ins = r.sign_ins + excluded.sign_ins, failures = r.failures + excluded.failures,
          interrupts = r.interrupts + excluded.interrupts;

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

-- The migration runs in one transaction: no upsert can interleave with the rebuild.
delete from sign_in_rollup_hourly;
insert into sign_in_rollup_hourly (hour, tenant_id, sign_in_event_type, country_or_region, state, city, latitude,
  longitude, sign_ins, failures, interrupts)
select signin_hour(created_date_time), tenant_id, sign_in_event_type, location_country_or_region, location_state,
  location_city, location_latitude, location_longitude, count(*), count(*) filter (where is_failure),
  count(*) filter (where outcome = 'interrupt')
from sign_ins
group by 1, 2, 3, 4, 5, 6, 7, 8;

create or replace view v_sign_in_volume_hourly as
select tenant_id, hour, sign_in_event_type,
  sum(sign_ins)::bigint as sign_ins,
  sum(failures)::bigint as failures,
  sum(interrupts)::bigint as interrupts
from sign_in_rollup_hourly
group by tenant_id, hour, sign_in_event_type;

create or replace view v_sign_ins_by_location_hourly as
select tenant_id, hour, country_or_region, state, city, latitude, longitude,
  sum(sign_ins)::bigint as sign_ins,
  sum(failures)::bigint as failures,
  sum(interrupts)::bigint as interrupts
from sign_in_rollup_hourly
group by tenant_id, hour, country_or_region, state, city, latitude, longitude;

-- ---------------------------------------------------------------------------------------------------------------
-- Failure views: is_failure, answered by index-only scans of partial covering indexes as before (0015).

create index sign_ins_failure_hour_covering_idx on sign_ins (signin_hour(created_date_time), tenant_id)
  include (status_error_code, status_failure_reason, user_principal_name, app_display_name, ip_address, created_date_time,
    outcome)
  where is_failure;
create index sign_ins_failure_day_covering_idx on sign_ins (signin_day(created_date_time), tenant_id)
  include (status_error_code, status_failure_reason, user_principal_name, app_display_name, ip_address, created_date_time,
    outcome)
  where is_failure;
drop index sign_ins_failed_hour_covering_idx, sign_ins_failed_day_covering_idx;

create or replace view v_failed_sign_ins_hourly as
select tenant_id, signin_hour(created_date_time) as hour, status_error_code as error_code,
  status_failure_reason as failure_reason, user_principal_name, app_display_name,
  count(*) as failures,
  count(distinct ip_address) as distinct_ips,
  max(created_date_time) as last_failure_at,
  outcome
from sign_ins
where is_failure
group by tenant_id, signin_hour(created_date_time), status_error_code, status_failure_reason, user_principal_name,
  app_display_name, outcome;

create or replace view v_failed_sign_ins_daily as
select tenant_id, signin_day(created_date_time) as day, status_error_code as error_code,
  status_failure_reason as failure_reason, user_principal_name, app_display_name,
  count(*) as failures,
  count(distinct ip_address) as distinct_ips,
  max(created_date_time) as last_failure_at,
  outcome
from sign_ins
where is_failure
group by tenant_id, signin_day(created_date_time), status_error_code, status_failure_reason, user_principal_name,
  app_display_name, outcome;

create or replace view v_legacy_auth_daily as
select tenant_id, signin_day(created_date_time) as day, user_principal_name, client_app_used,
  count(*) as sign_ins,
  count(*) filter (where outcome = 'success') as successes,
  count(*) filter (where is_failure) as failures,
  max(created_date_time) as last_seen_at,
  count(*) filter (where outcome = 'interrupt') as interrupts
from sign_ins
where is_legacy_auth
group by tenant_id, signin_day(created_date_time), user_principal_name, client_app_used;

create or replace view v_service_principal_activity_daily as
select tenant_id, signin_day(created_date_time) as day, sign_in_event_type,
  service_principal_id, max(service_principal_name) as service_principal_name, app_id, resource_display_name,
  count(*) as sign_ins,
  count(*) filter (where is_failure) as failures,
  count(distinct ip_address) filter (where ip_address <> '') as distinct_ips,
  max(created_date_time) as last_seen_at
from sign_ins
where sign_in_event_type in ('servicePrincipal', 'managedIdentity')
group by tenant_id, signin_day(created_date_time), sign_in_event_type, service_principal_id, app_id, resource_display_name;

-- Down Migration
-- Not provided: the daemon only migrates up, and going back would need 0015's views and the rollup rebuilt with the
-- old failure meaning. Restore a backup taken before 0020 instead.
