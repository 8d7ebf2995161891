-- Up Migration
-- Issue 13, build point 3: views (and parameterised functions) that mirror the detections SOC teams run
-- (../shared/detections.md; docs/detections.md maps each detection to its view). Each reads only the caller's time
-- range through a partial index; thresholds are function parameters or documented constants (docs/schema.md).

-- UTC 10-minute bucket (immutable, indexable), as signin_hour / signin_day.
create function signin_10min(ts timestamptz) returns timestamptz
language sql immutable parallel safe as $$
  select date_bin('10 minutes', ts, timestamptz '2000-01-01 00:00:00+00')
$$;

-- The reason of an MFA denial (500121's status.additionalDetails, or a step's authenticationStepResultDetail).
create function signin_mfa_denial_reason(detail text) returns text
language sql immutable parallel safe as $$
  select case
    when detail ~* 'fraud' then 'fraud'
    when detail ~* 'declined' then 'declined'
    when detail ~* 'did not respond|no response|timed? ?out' then 'no_response'
    else 'other'
  end
$$;

-- ---------------------------------------------------------------------------------------------------------------
-- Partial indexes: each view's rows, in time order, and the per-user / per-IP probes they make.

create index sign_ins_mfa_denial_idx on sign_ins (signin_10min(created_date_time), tenant_id)
  include (user_principal_name, status_additional_details, ip_address, location_country_or_region, created_date_time)
  where status_error_code = 500121;
-- Successes by user (the probe of "success after denials / failures") and by user and country (new-country baseline).
create index sign_ins_success_user_country_idx on sign_ins (tenant_id, user_principal_name, location_country_or_region,
  created_date_time) where outcome = 'success';
-- Password guessing: bad credentials and lockouts, per IP (spray) and per user (brute force).
create index sign_ins_guess_ip_idx on sign_ins (tenant_id, ip_address, created_date_time)
  include (user_principal_name, status_error_code, location_country_or_region, app_display_name)
  where outcome in ('bad_credentials', 'locked', 'disabled') and ip_address <> '';
create index sign_ins_guess_user_idx on sign_ins (tenant_id, user_principal_name, created_date_time)
  include (ip_address) where outcome in ('bad_credentials', 'locked');
-- Every sign-in by IP (the spray's "accounts whose password this IP got right", Sentinel's success test).
create index sign_ins_ip_idx on sign_ins (tenant_id, ip_address, created_date_time)
  include (user_principal_name, status_error_code);
create index sign_ins_guess_time_idx on sign_ins (created_date_time, tenant_id)
  include (user_principal_name, ip_address, status_error_code)
  where outcome in ('bad_credentials', 'locked', 'disabled');
-- (Index predicates use columns only: since PostgreSQL 17 index builds run with a safe search_path, under which a
-- function calling another of ours, like signin_password_verified, is not found.)
create index sign_ins_device_code_idx on sign_ins (created_date_time, tenant_id)
  where authentication_protocol = 'deviceCode' or original_transfer_method = 'deviceCodeFlow';
create index sign_ins_device_code_user_idx on sign_ins (tenant_id, user_principal_name, created_date_time)
  where authentication_protocol = 'deviceCode';
create index sign_ins_disabled_locked_idx on sign_ins (created_date_time, tenant_id) where outcome in ('disabled', 'locked');

-- ---------------------------------------------------------------------------------------------------------------
-- MFA denials and fatigue (Sentinel ExplicitMFADeny / MFARejectedbyUser / MFASpamming, Sigma azure_mfa_denies and
-- azure_successful_mfa_fatigue_attack, Splunk azure_ad_multiple_denied_mfa_requests_for_user): 500121 per user and
-- UTC 10-minute bucket, split by reason, with the user's first success in the 10 minutes after the last denial.
-- Fatigue: denials >= 7 (Sigma) or > 9 (Splunk) and success_after_at is not null.
create view v_mfa_denials as
select d.tenant_id, d.ten_minutes, d.user_principal_name, d.denials, d.declined, d.no_response, d.fraud, d.other_reason,
  d.distinct_ips, d.countries, d.first_denial_at, d.last_denial_at, s.created_date_time as success_after_at,
  s.ip_address as success_ip_address
from (
  select tenant_id, signin_10min(created_date_time) as ten_minutes, user_principal_name,
    count(*) as denials,
    count(*) filter (where signin_mfa_denial_reason(status_additional_details) = 'declined') as declined,
    count(*) filter (where signin_mfa_denial_reason(status_additional_details) = 'no_response') as no_response,
    count(*) filter (where signin_mfa_denial_reason(status_additional_details) = 'fraud') as fraud,
    count(*) filter (where signin_mfa_denial_reason(status_additional_details) = 'other') as other_reason,
    count(distinct ip_address) filter (where ip_address <> '') as distinct_ips,
    array_agg(distinct location_country_or_region) filter (where location_country_or_region <> '') as countries,
    min(created_date_time) as first_denial_at,
    max(created_date_time) as last_denial_at
  from sign_ins
  where status_error_code = 500121
  group by tenant_id, signin_10min(created_date_time), user_principal_name
) d
left join lateral (
  select o.created_date_time, o.ip_address
  from sign_ins o
  where o.tenant_id = d.tenant_id and o.user_principal_name = d.user_principal_name and o.outcome = 'success'
    and o.created_date_time > d.last_denial_at and o.created_date_time <= d.last_denial_at + interval '10 minutes'
  order by o.created_date_time
  limit 1
) s on true;

-- ---------------------------------------------------------------------------------------------------------------
-- Password spray v2 (Sentinel SigninPasswordSpray; Splunk, Elastic and Sigma variants): per IP, sliding windows of
-- p_window (20 min) starting at each failed attempt (bad credentials, lockout, disabled account); a window with at
-- least p_min_users (5) distinct users qualifies; overlapping qualifying windows of an IP merge into one burst. An IP
-- is kept only when its failed users outnumber the users whose password it got right in [p_from, p_to] (so a
-- corporate NAT with many legitimate sign-ins is not reported). Rows start in [p_from, p_to).
create function signin_password_spray(p_from timestamptz, p_to timestamptz, p_min_users integer default 5,
  p_window interval default interval '20 minutes')
returns table (tenant_id text, ip_address text, burst_start timestamptz, burst_end timestamptz, failed_users bigint,
  failures bigint, successful_users bigint, countries text[], apps text[], error_codes integer[])
language sql stable parallel safe as $$
  with starts as (
    select f.tenant_id, f.ip_address, f.created_date_time as t
    from sign_ins f
    where f.outcome in ('bad_credentials', 'locked', 'disabled') and f.ip_address <> ''
      and f.created_date_time >= p_from and f.created_date_time < p_to
      and (select count(distinct g.user_principal_name) from sign_ins g
           where g.tenant_id = f.tenant_id and g.ip_address = f.ip_address
             and g.outcome in ('bad_credentials', 'locked', 'disabled') and g.ip_address <> ''
             and g.created_date_time >= f.created_date_time and g.created_date_time < f.created_date_time + p_window)
          >= p_min_users
  ), islands as (
    select s.*, sum(case when s.t > s.prev + p_window then 1 else 0 end)
      over (partition by s.tenant_id, s.ip_address order by s.t) as burst
    from (select st.*, lag(st.t) over (partition by st.tenant_id, st.ip_address order by st.t) as prev from starts st) s
  ), bursts as (
    select i.tenant_id, i.ip_address, min(i.t) as burst_start, max(i.t) + p_window as burst_end
    from islands i group by i.tenant_id, i.ip_address, i.burst
  )
  select b.tenant_id, b.ip_address, b.burst_start, b.burst_end, f.failed_users, f.failures, ok.successful_users,
    f.countries, f.apps, f.error_codes
  from bursts b
  cross join lateral (
    select count(distinct g.user_principal_name) as failed_users, count(*) as failures,
      array_agg(distinct g.location_country_or_region) filter (where g.location_country_or_region <> '') as countries,
      array_agg(distinct g.app_display_name) filter (where g.app_display_name <> '') as apps,
      array_agg(distinct g.status_error_code) as error_codes
    from sign_ins g
    where g.tenant_id = b.tenant_id and g.ip_address = b.ip_address
      and g.outcome in ('bad_credentials', 'locked', 'disabled') and g.ip_address <> ''
      and g.created_date_time >= b.burst_start and g.created_date_time < b.burst_end
  ) f
  cross join lateral (
    select count(distinct o.user_principal_name) as successful_users
    from sign_ins o
    where o.tenant_id = b.tenant_id and o.ip_address = b.ip_address
      and o.created_date_time >= p_from and o.created_date_time < p_to
      and signin_password_verified(o.status_error_code)
  ) ok
  where f.failed_users > ok.successful_users
$$;

-- Distributed spray (Elastic credential_access_entra_id_brute_force_activity, "password_spraying"): tenant-wide
-- windows of p_window (30 min) hopping by half a window, with at least p_min_users (15) distinct users failing from
-- at least p_min_ips (5) IPs; the dominant error code and its share show a single-technique campaign. Windows start
-- in [p_from, p_to); a burst may appear in two overlapping windows.
create function signin_distributed_spray(p_from timestamptz, p_to timestamptz, p_min_users integer default 15,
  p_min_ips integer default 5, p_window interval default interval '30 minutes')
returns table (tenant_id text, window_start timestamptz, window_end timestamptz, failed_users bigint,
  distinct_ips bigint, failures bigint, dominant_error_code integer, dominant_share numeric)
language sql stable parallel safe as $$
  with w as (
    select f.tenant_id, f.user_principal_name, f.ip_address, f.status_error_code,
      date_bin(p_window, f.created_date_time - k.shift, timestamptz '2000-01-01 00:00:00+00') + k.shift as window_start
    from sign_ins f
    cross join (values (interval '0'), (p_window / 2)) as k(shift)
    where f.outcome in ('bad_credentials', 'locked', 'disabled')
      and f.created_date_time >= p_from - p_window and f.created_date_time < p_to + p_window
  ), g as (
    select w.tenant_id, w.window_start, count(distinct w.user_principal_name) as failed_users,
      count(distinct w.ip_address) filter (where w.ip_address <> '') as distinct_ips, count(*) as failures,
      mode() within group (order by w.status_error_code) as dominant_error_code
    from w
    where w.window_start >= p_from and w.window_start < p_to
    group by w.tenant_id, w.window_start
  )
  select g.tenant_id, g.window_start, g.window_start + p_window, g.failed_users, g.distinct_ips, g.failures,
    g.dominant_error_code,
    round((select count(*) from w where w.tenant_id = g.tenant_id and w.window_start = g.window_start
             and w.status_error_code = g.dominant_error_code)::numeric / g.failures, 2)
  from g
  where g.failed_users >= p_min_users and g.distinct_ips >= p_min_ips
$$;

-- ---------------------------------------------------------------------------------------------------------------
-- New-country attempts (Sentinel AuthenticationAttemptfromNewCountry / NewCountryValidCreds; Sigma "countries you do
-- not operate out of"): any user sign-in whose password was verified (a success, an MFA or KMSI interrupt, or a block
-- after it: signin_password_verified) from a country where that user had no success in the 14 days before.
-- has_baseline tells whether the user had any success at all in those 14 days (false: a new or dormant user).
create view v_new_country_attempts as
select s.tenant_id, s.id, s.created_date_time, s.user_principal_name, s.location_country_or_region as country_or_region,
  s.location_city as city, s.ip_address, s.app_display_name, s.sign_in_event_type, s.status_error_code as error_code,
  s.outcome, s.autonomous_system_number, s.user_agent,
  exists (select 1 from sign_ins b
          where b.tenant_id = s.tenant_id and b.user_principal_name = s.user_principal_name and b.outcome = 'success'
            and b.created_date_time >= s.created_date_time - interval '14 days'
            and b.created_date_time < s.created_date_time) as has_baseline
from sign_ins s
where signin_password_verified(s.status_error_code) and s.user_principal_name <> '' and s.location_country_or_region <> ''
  and not exists (
    select 1 from sign_ins b
    where b.tenant_id = s.tenant_id and b.user_principal_name = s.user_principal_name
      and b.location_country_or_region = s.location_country_or_region and b.outcome = 'success'
      and b.created_date_time >= s.created_date_time - interval '14 days'
      and b.created_date_time < s.created_date_time);

-- ---------------------------------------------------------------------------------------------------------------
-- Device-code flow (Elastic credential_access_azure_entra_susp_device_code_signin and first-time-seen variant;
-- Sigma azure_app_device_code_authentication): the device-code sign-in itself (authenticationProtocol deviceCode)
-- and the refreshes of its tokens (originalTransferMethod deviceCodeFlow). Beta-only fields: empty for v1.0 rows.
create view v_device_code_sign_ins as
select s.tenant_id, s.id, s.created_date_time, s.user_principal_name, s.app_display_name, s.resource_display_name,
  s.ip_address, s.location_country_or_region as country_or_region, s.user_agent, s.session_id,
  s.authentication_protocol, s.original_transfer_method, s.sign_in_event_type, s.status_error_code as error_code,
  s.outcome,
  s.authentication_protocol = 'deviceCode' and not exists (
    select 1 from sign_ins p
    where p.tenant_id = s.tenant_id and p.user_principal_name = s.user_principal_name
      and p.authentication_protocol = 'deviceCode' and p.created_date_time < s.created_date_time) as first_for_user
from sign_ins s
where s.authentication_protocol = 'deviceCode' or s.original_transfer_method = 'deviceCodeFlow';

-- ---------------------------------------------------------------------------------------------------------------
-- Sign-ins to disabled (50057) or locked (50053) accounts (Sentinel DisabledAccountSigninsAcrossManyApplications,
-- SigninAttemptsByIPviaDisabledAccounts, SmartLockouts; Sigma azure_blocked_account_attempt, azure_account_lockout).
create view v_disabled_locked_sign_ins as
select tenant_id, id, created_date_time, user_principal_name, app_display_name, ip_address,
  location_country_or_region as country_or_region, status_error_code as error_code, status_failure_reason as failure_reason,
  outcome, sign_in_event_type, user_agent
from sign_ins
where outcome in ('disabled', 'locked');

-- ---------------------------------------------------------------------------------------------------------------
-- A success after many failures (Sentinel SigninBruteForce-AzurePortal, Elastic brute force "password_guessing"):
-- a successful sign-in preceded, within 20 minutes, by at least 5 bad-credential or lockout failures of the same user
-- (Sentinel alerts at 10: filter failures_before >= 10).
create view v_success_after_failures as
select s.tenant_id, s.id, s.created_date_time, s.user_principal_name, s.app_display_name, s.ip_address,
  s.location_country_or_region as country_or_region, f.failures_before, f.failure_ips, f.first_failure_at,
  s.ip_address = any (f.failure_ip_list) as success_from_failure_ip
from sign_ins s
cross join lateral (
  select count(*) as failures_before, count(distinct g.ip_address) as failure_ips, min(g.created_date_time) as first_failure_at,
    array_agg(distinct g.ip_address) as failure_ip_list
  from sign_ins g
  where g.tenant_id = s.tenant_id and g.user_principal_name = s.user_principal_name
    and g.outcome in ('bad_credentials', 'locked')
    and g.created_date_time >= s.created_date_time - interval '20 minutes' and g.created_date_time < s.created_date_time
) f
where s.outcome = 'success' and s.user_principal_name <> '' and f.failures_before >= 5;

-- Down Migration
-- Not provided (the daemon only migrates up).
