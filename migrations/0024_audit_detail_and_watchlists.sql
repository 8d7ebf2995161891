-- Up Migration
-- Issue 13, the rest of build points 2 and 3 (docs/detections.md):
--   1. Directory-audit detail: child tables of targets and modified properties, and typed columns for the
--      initiating app / service principal and the User-Agent, kept from raw like sign_ins' child tables.
--   2. A watchlist (break-glass, privileged and VIP accounts, known networks, apps, countries) and the views of the
--      detections that needed it or had no view yet (#3, #12, #16, #17, #18, #23 for privileged accounts, #26).
--   3. Speed: v_new_country_attempts and v_success_after_failures read tables of candidates kept by statement
--      triggers (the views visited every sign-in of the range and probed an index for each); the spray function
--      counts window users in one sweep per IP, for IPs with enough failed users (docs/performance-views.md).
--   4. 0023's error-catching JSON helpers become parallel restricted (they failed parallel plans).

-- ---------------------------------------------------------------------------------------------------------------
-- 1. Directory-audit detail

alter table directory_audits
  add column initiated_by_app_service_principal_id text
    generated always as (signin_text(raw -> 'initiatedBy' -> 'app' -> 'servicePrincipalId')) stored,
  add column initiated_by_app_service_principal_name text
    generated always as (signin_text(raw -> 'initiatedBy' -> 'app' -> 'servicePrincipalName')) stored,
  -- additionalDetails[key = "User-Agent"] (v1.0 and beta), else beta's top-level userAgent.
  add column user_agent text
    generated always as (coalesce(signin_audit_detail(raw, 'User-Agent'), signin_text(raw -> 'userAgent'))) stored;

-- 0023's helpers catch errors, which opens a subtransaction, and that cannot happen in a parallel worker: declared
-- parallel safe, they failed any 30-day audit view the planner ran in parallel ("cannot start subtransactions during
-- a parallel operation", seen in bench/views.ts at 600,000 sign-ins). They run in the leader only now.
alter function signin_json_text(text) parallel restricted;
alter function signin_json_state(text) parallel restricted;

-- JSON text parsed, or null when it is not JSON (modified-property values are JSON text: "\"Global Administrator\"",
-- "[\"…\"]", "{…}"; some are plain text such as DirectorySync).
create function signin_try_jsonb(t text) returns jsonb
language plpgsql immutable parallel restricted as $$
begin
  if t is null or t !~ '^\s*[\[{"0-9tfn-]' then
    return null;
  end if;
  return t::jsonb;
exception when others then
  return null;
end
$$;

-- A value as text: a JSON string's content, any other JSON value as its JSON text, unbounded (policy JSON runs to
-- kilobytes; these columns are not indexed).
create function signin_full_text(j jsonb) returns text
language sql immutable parallel safe as $$
  select case when jsonb_typeof(j) = 'null' then null when jsonb_typeof(j) = 'string' then j #>> '{}' else j::text end
$$;

-- targetResources[], in order (ordinal from 1). Graph's v1.0 examples spell `Type` with a capital T.
create table directory_audit_targets (
  tenant_id text not null,
  audit_id text not null,
  activity_date_time timestamptz not null,
  ordinal integer not null,
  target_id text,
  type text,
  display_name text,
  user_principal_name text,
  group_type text,
  primary key (tenant_id, audit_id, ordinal),
  foreign key (tenant_id, audit_id) references directory_audits (tenant_id, id) on delete cascade
);
create index directory_audit_targets_target_idx on directory_audit_targets (tenant_id, target_id, activity_date_time);
create index directory_audit_targets_upn_idx on directory_audit_targets (tenant_id, lower(user_principal_name),
  activity_date_time) where user_principal_name is not null;

-- targetResources[target_ordinal].modifiedProperties[], in order; the values as Graph sends them (text, usually
-- JSON) and parsed when they are JSON.
create table directory_audit_modified_properties (
  tenant_id text not null,
  audit_id text not null,
  activity_date_time timestamptz not null,
  target_ordinal integer not null,
  ordinal integer not null,
  name text,
  old_value text,
  new_value text,
  old_json jsonb,
  new_json jsonb,
  primary key (tenant_id, audit_id, target_ordinal, ordinal),
  foreign key (tenant_id, audit_id, target_ordinal) references directory_audit_targets (tenant_id, audit_id, ordinal)
    on delete cascade
);
create index directory_audit_modified_properties_name_idx on directory_audit_modified_properties (tenant_id, name,
  activity_date_time);

-- Like signin_write_children (0002): one set-based insert per statement from its transition tables; a changed
-- re-publication (UPDATE) replaces the audit's rows.
create function signin_write_audit_children() returns trigger
language plpgsql as $$
begin
  if tg_op = 'UPDATE' then
    -- Modified properties go with their targets (foreign key, on delete cascade).
    delete from directory_audit_targets c using old_rows o where c.tenant_id = o.tenant_id and c.audit_id = o.id;
  end if;

  insert into directory_audit_targets (tenant_id, audit_id, activity_date_time, ordinal, target_id, type, display_name,
    user_principal_name, group_type)
  select n.tenant_id, n.id, n.activity_date_time, t.ordinal, signin_text(t.v -> 'id'),
    coalesce(signin_text(t.v -> 'type'), signin_text(t.v -> 'Type')), signin_text(t.v -> 'displayName'),
    signin_text(t.v -> 'userPrincipalName'), signin_text(t.v -> 'groupType')
  from new_rows n
  cross join lateral jsonb_array_elements(signin_array(n.raw -> 'targetResources')) with ordinality as t(v, ordinal)
  order by n.tenant_id, n.id, t.ordinal;

  insert into directory_audit_modified_properties (tenant_id, audit_id, activity_date_time, target_ordinal, ordinal,
    name, old_value, new_value, old_json, new_json)
  select n.tenant_id, n.id, n.activity_date_time, t.ordinal, p.ordinal, signin_text(p.v -> 'displayName'),
    signin_full_text(p.v -> 'oldValue'), signin_full_text(p.v -> 'newValue'),
    signin_try_jsonb(signin_full_text(p.v -> 'oldValue')), signin_try_jsonb(signin_full_text(p.v -> 'newValue'))
  from new_rows n
  cross join lateral jsonb_array_elements(signin_array(n.raw -> 'targetResources')) with ordinality as t(v, ordinal)
  cross join lateral jsonb_array_elements(signin_array(t.v -> 'modifiedProperties')) with ordinality as p(v, ordinal)
  order by n.tenant_id, n.id, t.ordinal, p.ordinal;
  return null;
end
$$;

create trigger directory_audits_children_insert after insert on directory_audits
  referencing new table as new_rows for each statement execute function signin_write_audit_children();
create trigger directory_audits_children_update after update on directory_audits
  referencing old table as old_rows new table as new_rows for each statement execute function signin_write_audit_children();

-- Existing audits (the migration runs in one transaction: no upsert interleaves).
insert into directory_audit_targets (tenant_id, audit_id, activity_date_time, ordinal, target_id, type, display_name,
  user_principal_name, group_type)
select a.tenant_id, a.id, a.activity_date_time, t.ordinal, signin_text(t.v -> 'id'),
  coalesce(signin_text(t.v -> 'type'), signin_text(t.v -> 'Type')), signin_text(t.v -> 'displayName'),
  signin_text(t.v -> 'userPrincipalName'), signin_text(t.v -> 'groupType')
from directory_audits a
cross join lateral jsonb_array_elements(signin_array(a.raw -> 'targetResources')) with ordinality as t(v, ordinal);
insert into directory_audit_modified_properties (tenant_id, audit_id, activity_date_time, target_ordinal, ordinal,
  name, old_value, new_value, old_json, new_json)
select a.tenant_id, a.id, a.activity_date_time, t.ordinal, p.ordinal, signin_text(p.v -> 'displayName'),
  signin_full_text(p.v -> 'oldValue'), signin_full_text(p.v -> 'newValue'),
  signin_try_jsonb(signin_full_text(p.v -> 'oldValue')), signin_try_jsonb(signin_full_text(p.v -> 'newValue'))
from directory_audits a
cross join lateral jsonb_array_elements(signin_array(a.raw -> 'targetResources')) with ordinality as t(v, ordinal)
cross join lateral jsonb_array_elements(signin_array(t.v -> 'modifiedProperties')) with ordinality as p(v, ordinal);

-- ---------------------------------------------------------------------------------------------------------------
-- 2. Watchlist: the reference lists Sentinel keeps in watchlists and IdentityInfo. Written by the daemon's role
-- (it owns the table) or an administrator; signin_reader reads it like every table (0002's default privileges).
--   break_glass  a UPN of an emergency-access account (#26; also counted as privileged)
--   privileged   a UPN of an administrator (#16, #17, #23; v_privileged_users adds admin-role assignments)
--   vip          a UPN of a VIP account (#23 watches them like administrators)
--   ip           an address or CIDR range of a known network (corporate egress, VPN): `from_known_network` in
--                #12, #17 and #18
--   app          an app id or display name that matters (Sigma's "important apps": a query, docs/detections.md)
--   country      a country code the organisation operates in (Sigma's "countries you do not operate out of")
-- Entries are per tenant. UPNs and names are compared case-insensitively.
create table watchlist (
  tenant_id text not null,
  kind text not null check (kind in ('break_glass', 'privileged', 'vip', 'ip', 'app', 'country')),
  value text not null check (value <> '' and octet_length(value) <= 400),
  note text,
  added_at timestamptz not null default now(),
  added_by text not null default current_user,
  -- An `ip` value must be an address or CIDR range (a bad one is refused: 22P02 invalid input syntax).
  network cidr generated always as (case when kind = 'ip' then value::cidr end) stored,
  primary key (tenant_id, kind, value)
);
create unique index watchlist_value_idx on watchlist (tenant_id, kind, lower(value));

-- Whether an address (sign_ins.ip, 0001) lies in a watched network (kind ip) of the tenant.
create function signin_known_network(p_tenant_id text, p_ip inet) returns boolean
language sql stable parallel safe as $$
  select exists (
    select 1 from watchlist w
    where w.kind = 'ip' and w.tenant_id = p_tenant_id and p_ip <<= w.network
  )
$$;

-- The tenant's privileged accounts: the watchlist's break_glass / privileged / vip entries, and every user assigned
-- a role whose name contains "admin" (Sentinel's IdentityInfo test) by v_role_assignments' activities (successful;
-- removals are not tracked, so a past administrator stays listed). One row per (tenant, lower-case UPN);
-- `spellings` are the UPN as written there and as sign-ins spell it (user_countries), which the views below match
-- exactly, so that sign_ins' user index serves them.
create index user_countries_lower_user_idx on user_countries (tenant_id, lower(user_principal_name));

create view v_privileged_users as
select g.tenant_id, g.user_principal_name, g.sources, g.roles, g.note,
  array(select distinct x collate "C" from unnest(g.spellings || array(
    select u.user_principal_name from user_countries u
    where u.tenant_id = g.tenant_id and lower(u.user_principal_name) = g.user_principal_name)) as x
    order by 1) as spellings
from (
  select p.tenant_id, lower(p.spelling) as user_principal_name, array_agg(distinct p.source order by p.source) as sources,
    array_agg(distinct p.role_display_name order by p.role_display_name) filter (where p.role_display_name is not null)
      as roles,
    max(p.note) as note,
    array_agg(distinct p.spelling) || array[lower(p.spelling)] as spellings
  from (
    select w.tenant_id, w.value as spelling, w.kind as source, null::text as role_display_name, w.note
    from watchlist w
    where w.kind in ('break_glass', 'privileged', 'vip')
    union all
    -- v_role_assignments' rows, read from the child tables (the role's name is on the user target).
    select t.tenant_id, t.user_principal_name, 'role', p.new_json #>> '{}', null
    from directory_audit_modified_properties p
    join directory_audit_targets t on t.tenant_id = p.tenant_id and t.audit_id = p.audit_id and t.ordinal = p.target_ordinal
    join directory_audits a on a.tenant_id = p.tenant_id and a.id = p.audit_id
    where p.name = 'Role.DisplayName' and t.type = 'User' and t.user_principal_name is not null
      and (p.new_json #>> '{}') ilike '%admin%' and coalesce(a.result, 'success') = 'success'
      and a.activity_display_name in ('Add member to role', 'Add eligible member to role',
        'Add member to role outside of PIM', 'Add member to role completed (PIM activation)')
  ) p
  group by p.tenant_id, lower(p.spelling)
) g;

-- ---------------------------------------------------------------------------------------------------------------
-- New views (docs/detections.md). Each keeps its time column for the caller's filter.

-- #3 (Sentinel DistribPassCrackAttempt): one user failing with a bad password or lockout (50126, 50053, 50055,
-- 50056) from many places in a UTC day: more than 30 failures from at least 3 distinct (country, state, city).
create index sign_ins_cracking_day_idx on sign_ins (signin_day(created_date_time), tenant_id)
  include (user_principal_name, ip_address, location_country_or_region, location_state, location_city,
    status_error_code, created_date_time)
  where status_error_code in (50126, 50053, 50055, 50056);

create view v_distributed_password_cracking as
select tenant_id, signin_day(created_date_time) as day, user_principal_name,
  count(*) as failures,
  count(distinct (location_country_or_region, location_state, location_city)) as distinct_locations,
  count(distinct ip_address) filter (where ip_address <> '') as distinct_ips,
  array_agg(distinct location_country_or_region) filter (where location_country_or_region <> '') as countries,
  array_agg(distinct status_error_code) as error_codes,
  min(created_date_time) as first_failure_at,
  max(created_date_time) as last_failure_at
from sign_ins
where status_error_code in (50126, 50053, 50055, 50056)
group by tenant_id, signin_day(created_date_time), user_principal_name
having count(*) > 30 and count(distinct (location_country_or_region, location_state, location_city)) >= 3;

-- The network part Sentinel compares: the first two octets of IPv4, the first two hextets of IPv6.
create function signin_ip_prefix(ip text) returns text
language sql immutable parallel safe as $$
  select case
    when ip is null or ip = '' then null
    when position(':' in ip) > 0 then lower(split_part(ip, ':', 1) || ':' || split_part(ip, ':', 2))
    else split_part(ip, '.', 1) || '.' || split_part(ip, '.', 2)
  end
$$;

-- #12 (Sentinel SuccessThenFail_DiffIP_SameUserandApp): a failed sign-in (is_failure: interrupts such as 50140 and
-- 50074 are not failures; failure reason not "Other") within 10 minutes after a success of the same user and app
-- from another network (signin_ip_prefix). Exchange Online and Skype for Business are excluded, as in Sentinel. One
-- row per failure, with the latest such success.
create index sign_ins_failure_time_idx on sign_ins (created_date_time, tenant_id)
  include (user_principal_name, app_display_name, ip_address) where is_failure;
-- Successes by user and time, covering #12's probe (app, IP) and #17's (ASN).
create index sign_ins_success_user_time_idx on sign_ins (tenant_id, user_principal_name, created_date_time)
  include (app_display_name, ip_address, autonomous_system_number) where outcome = 'success';

create view v_success_then_failure_other_ip as
select f.tenant_id, f.id, f.created_date_time, f.user_principal_name, f.app_display_name, f.ip_address,
  f.location_country_or_region as country_or_region, f.status_error_code as error_code,
  f.status_failure_reason as failure_reason, s.id as success_id, s.created_date_time as success_at,
  s.ip_address as success_ip_address,
  signin_known_network(f.tenant_id, f.ip) as from_known_network
from sign_ins f
cross join lateral (
  select o.id, o.created_date_time, o.ip_address
  from sign_ins o
  where o.tenant_id = f.tenant_id and o.user_principal_name = f.user_principal_name and o.outcome = 'success'
    and o.created_date_time >= f.created_date_time - interval '10 minutes' and o.created_date_time < f.created_date_time
    and o.app_display_name = f.app_display_name
    and signin_ip_prefix(o.ip_address) is distinct from signin_ip_prefix(f.ip_address) and o.ip_address <> ''
  order by o.created_date_time desc
  limit 1
) s
where f.is_failure and f.user_principal_name <> '' and f.ip_address <> ''
  and coalesce(f.status_failure_reason, '') <> 'Other'
  and f.app_display_name not in ('Office 365 Exchange Online', 'Skype for Business Online');

-- #16 (Sentinel PrivilegedSigninsWithoutConditionalAccessSuccess; Sigma single-factor): successful sign-ins of
-- privileged users (v_privileged_users) not gated by Conditional Access (conditionalAccessStatus other than
-- success) or with single-factor authentication only. `reasons` says which.
create view v_privileged_sign_ins_without_ca as
select s.tenant_id, s.id, s.created_date_time, s.user_principal_name, s.app_display_name, s.ip_address,
  s.location_country_or_region as country_or_region, s.conditional_access_status, s.authentication_requirement,
  array_remove(array[
    case when coalesce(s.conditional_access_status, '') <> 'success' then 'not_gated_by_ca' end,
    case when s.authentication_requirement = 'singleFactorAuthentication' then 'single_factor' end], null) as reasons,
  p.sources as privileged_sources
from v_privileged_users p
-- One probe of sign_ins_user_idx per spelling (a join on `= any (p.spellings)` re-evaluated the list per sign-in).
cross join lateral unnest(p.spellings) as u(spelling)
join sign_ins s on s.tenant_id = p.tenant_id and s.user_principal_name = u.spelling
where s.outcome = 'success'
  and (coalesce(s.conditional_access_status, '') <> 'success' or s.authentication_requirement = 'singleFactorAuthentication');

-- #17 (Sentinel PrivilegedUserLogonfromnewASN): a success of a privileged user from an autonomous system with no
-- success of that user in the 14 days before (beta field: empty for v1.0 rows). has_baseline: the user had any
-- success in those 14 days (false: nothing to compare with).
create index sign_ins_success_user_asn_idx on sign_ins (tenant_id, user_principal_name, autonomous_system_number,
  created_date_time) where outcome = 'success' and autonomous_system_number is not null;

create view v_privileged_new_asn as
select s.tenant_id, s.id, s.created_date_time, s.user_principal_name, s.autonomous_system_number, s.ip_address,
  s.location_country_or_region as country_or_region, s.app_display_name,
  exists (select 1 from sign_ins b
          where b.tenant_id = s.tenant_id and b.user_principal_name = s.user_principal_name and b.outcome = 'success'
            and b.created_date_time >= s.created_date_time - interval '14 days'
            and b.created_date_time < s.created_date_time) as has_baseline,
  signin_known_network(s.tenant_id, s.ip) as from_known_network,
  p.sources as privileged_sources
from v_privileged_users p
-- One probe of sign_ins_user_idx per spelling (a join on `= any (p.spellings)` re-evaluated the list per sign-in).
cross join lateral unnest(p.spellings) as u(spelling)
join sign_ins s on s.tenant_id = p.tenant_id and s.user_principal_name = u.spelling
where s.outcome = 'success' and s.autonomous_system_number is not null
  -- A probe per row (limit 1), never a hash anti-join: keyed on a few users or service principals, that compared
  -- every pair of their rows (14 M comparisons, 3.8 s, for 12,781 service-principal sign-ins).
  and (select 1 from sign_ins b
       where b.tenant_id = s.tenant_id and b.user_principal_name = s.user_principal_name and b.outcome = 'success'
         and b.autonomous_system_number = s.autonomous_system_number
         and b.created_date_time >= s.created_date_time - interval '14 days' and b.created_date_time < s.created_date_time
       limit 1) is null;

-- #18 (Sentinel ServicePrincipalAuthenticationAttemptfromNewCountry): a service-principal sign-in attempt (any code
-- but 50126) from a country with no success of that service principal in the 14 days before. new_for_tenant: no
-- service principal of the tenant succeeded from that country in those 14 days either (Sentinel's tenant-wide form).
-- Needs the servicePrincipal stream in STREAMS.
create index sign_ins_sp_time_idx on sign_ins (created_date_time, tenant_id)
  where sign_in_event_type = 'servicePrincipal';
create index sign_ins_sp_success_country_idx on sign_ins (tenant_id, service_principal_id, location_country_or_region,
  created_date_time) where sign_in_event_type = 'servicePrincipal' and outcome = 'success';
create index sign_ins_sp_success_tenant_country_idx on sign_ins (tenant_id, location_country_or_region,
  created_date_time) where sign_in_event_type = 'servicePrincipal' and outcome = 'success';

create view v_service_principal_new_country as
select s.tenant_id, s.id, s.created_date_time, s.service_principal_id, s.service_principal_name, s.app_id,
  s.location_country_or_region as country_or_region, s.ip_address, s.resource_display_name,
  s.status_error_code as error_code, s.outcome,
  not exists (select 1 from sign_ins b
              where b.tenant_id = s.tenant_id and b.sign_in_event_type = 'servicePrincipal' and b.outcome = 'success'
                and b.location_country_or_region = s.location_country_or_region
                and b.created_date_time >= s.created_date_time - interval '14 days'
                and b.created_date_time < s.created_date_time) as new_for_tenant,
  signin_known_network(s.tenant_id, s.ip) as from_known_network
from sign_ins s
where s.sign_in_event_type = 'servicePrincipal' and s.location_country_or_region <> ''
  and s.service_principal_id is not null and coalesce(s.status_error_code, 0) <> 50126
  -- A probe per row, as in v_privileged_new_asn.
  and (select 1 from sign_ins b
       where b.tenant_id = s.tenant_id and b.sign_in_event_type = 'servicePrincipal' and b.outcome = 'success'
         and b.service_principal_id = s.service_principal_id
         and b.location_country_or_region = s.location_country_or_region
         and b.created_date_time >= s.created_date_time - interval '14 days' and b.created_date_time < s.created_date_time
       limit 1) is null;

-- #23 for privileged accounts (Sentinel AuthenticationMethodsChangedforPrivilegedAccount): security-info changes
-- whose target is a privileged user (watchlist privileged / break_glass / vip, or an admin role).
create view v_privileged_security_info_changes as
select c.*, p.sources as privileged_sources
from v_security_info_changes c
join v_privileged_users p on p.tenant_id = c.tenant_id and p.user_principal_name = lower(c.target_user_principal_name);

-- #26 (Sentinel BreakGlassAccountSignIn): every sign-in (any result) of a watched break-glass account.
create view v_break_glass_sign_ins as
select s.tenant_id, s.id, s.created_date_time, s.user_principal_name, s.app_display_name, s.ip_address,
  s.location_country_or_region as country_or_region, s.location_city as city, s.status_error_code as error_code,
  s.outcome, s.conditional_access_status, s.sign_in_event_type, s.user_agent, w.note
from watchlist w
-- The UPN as written, in lower case, and as sign-ins spell it: one probe of sign_ins_user_idx each.
cross join lateral (
  select x from unnest(array[w.value, lower(w.value)] || array(
    select u.user_principal_name from user_countries u
    where u.tenant_id = w.tenant_id and lower(u.user_principal_name) = lower(w.value))) as x
  group by x
) u(spelling)
join sign_ins s on s.tenant_id = w.tenant_id and s.user_principal_name = u.spelling
where w.kind = 'break_glass';

-- ---------------------------------------------------------------------------------------------------------------
-- 3. Candidate tables for the two per-row SOC views (0022), kept by statement triggers on sign_ins.
--
-- A sign-in's membership depends only on itself and on other sign-ins of the same user in a window before it
-- (20 minutes of guesses; 14 days of successes), so a statement recomputes the rows it changed and the rows whose
-- window holds one of them, after taking the per-tenant lock of the travel trigger (0015): a writer that waited sees
-- what concurrent writers of the tenant committed, and whichever commits last computes the rows spanning both. The
-- views read the candidates (a few per cent of sign-ins) and join sign_ins for the columns, which stay computed
-- exactly as in 0022. Retention drops the candidates with their month (src/store/partitions.ts).

create table sign_in_success_after_failures (
  tenant_id text not null,
  id text not null,
  created_date_time timestamptz not null,
  user_principal_name text not null,
  primary key (tenant_id, id, created_date_time)
);
create index sign_in_success_after_failures_time_idx on sign_in_success_after_failures (created_date_time, tenant_id);

create table sign_in_new_country_attempts (
  tenant_id text not null,
  id text not null,
  created_date_time timestamptz not null,
  user_principal_name text not null,
  country_or_region text not null,
  primary key (tenant_id, id, created_date_time)
);
create index sign_in_new_country_attempts_time_idx on sign_in_new_country_attempts (created_date_time, tenant_id);
create index sign_in_new_country_attempts_user_idx on sign_in_new_country_attempts (tenant_id, user_principal_name,
  country_or_region, created_date_time);

-- A sign-in's key, as the trigger passes sets of them between its statements.
create type signin_row_key as (tenant_id text, id text, created_date_time timestamptz);

-- The keyed functions and the trigger below probe sign_ins per row (lateral subqueries kept apart by `offset 0`,
-- `limit 1` instead of not exists): on a month without statistics yet (the first pages of an import or a backfill)
-- the planner otherwise hash-joined every success of the tenant with the statement's rows, which took 10 s for the
-- first page of 1,000 and minutes later on.

-- Of the given sign-ins, the successes preceded within 20 minutes by at least 5 bad-credential or lockout failures
-- of the same user (v_success_after_failures' condition).
create function signin_success_after_failures_of(keys signin_row_key[]) returns setof sign_in_success_after_failures
language sql stable as $$
  select s.tenant_id, s.id, s.created_date_time, s.user_principal_name
  from unnest(keys) as k
  cross join lateral (select * from sign_ins s
                      where s.tenant_id = k.tenant_id and s.id = k.id and s.created_date_time = k.created_date_time
                      offset 0) s
  where s.outcome = 'success' and s.user_principal_name <> ''
    and (select count(*) from sign_ins g
         where g.tenant_id = s.tenant_id and g.user_principal_name = s.user_principal_name
           and g.outcome in ('bad_credentials', 'locked')
           and g.created_date_time >= s.created_date_time - interval '20 minutes'
           and g.created_date_time < s.created_date_time) >= 5
$$;

-- Of the given sign-ins, those with a verified password from a country where the user had no success in the 14 days
-- before (v_new_country_attempts' condition).
create function signin_new_country_attempts_of(keys signin_row_key[]) returns setof sign_in_new_country_attempts
language sql stable as $$
  select s.tenant_id, s.id, s.created_date_time, s.user_principal_name, s.location_country_or_region
  from unnest(keys) as k
  cross join lateral (select * from sign_ins s
                      where s.tenant_id = k.tenant_id and s.id = k.id and s.created_date_time = k.created_date_time
                      offset 0) s
  where signin_password_verified(s.status_error_code) and s.user_principal_name <> ''
    and s.location_country_or_region <> ''
    and (select 1 from sign_ins b
         where b.tenant_id = s.tenant_id and b.user_principal_name = s.user_principal_name
           and b.location_country_or_region = s.location_country_or_region and b.outcome = 'success'
           and b.created_date_time >= s.created_date_time - interval '14 days'
           and b.created_date_time < s.created_date_time
         limit 1) is null
$$;

create function signin_write_attempt_candidates() returns trigger
language plpgsql as $$
declare
  changed signin_row_key[];
  recheck signin_row_key[];
  gone_successes signin_row_key[];
begin
  -- The statement's rows that can matter: guesses, successes and verified-password attempts of named users.
  if tg_op = 'UPDATE' then
    select array_agg(distinct row(c.tenant_id, c.id, c.created_date_time)::signin_row_key) into changed
    from (
      select o.tenant_id, o.id, o.created_date_time from old_rows o
      where o.user_principal_name <> '' and (o.outcome in ('bad_credentials', 'locked')
        or signin_password_verified(o.status_error_code))
      union all
      select w.tenant_id, w.id, w.created_date_time from new_rows w
      where w.user_principal_name <> '' and (w.outcome in ('bad_credentials', 'locked')
        or signin_password_verified(w.status_error_code))
    ) c;
  else
    select array_agg(row(w.tenant_id, w.id, w.created_date_time)::signin_row_key) into changed
    from new_rows w
    where w.user_principal_name <> '' and (w.outcome in ('bad_credentials', 'locked')
      or signin_password_verified(w.status_error_code));
  end if;
  if changed is null then
    return null;
  end if;

  perform pg_advisory_xact_lock(hashtextextended('signin-ingest/travel/' || t.tenant_id, 0))
  from (select distinct c.tenant_id from unnest(changed) as c order by 1) t;

  -- Success after failures: the changed rows, and the successes within 20 minutes after a changed guess.
  select array_agg(distinct k) into recheck
  from (
    select c::signin_row_key as k from unnest(changed) as c
    union all
    select row(s.tenant_id, s.id, s.created_date_time)::signin_row_key
    from new_rows g
    cross join lateral (select s.tenant_id, s.id, s.created_date_time from sign_ins s
                        where s.tenant_id = g.tenant_id and s.user_principal_name = g.user_principal_name
                          and s.outcome = 'success' and s.created_date_time > g.created_date_time
                          and s.created_date_time <= g.created_date_time + interval '20 minutes'
                        offset 0) s
    where g.outcome in ('bad_credentials', 'locked') and g.user_principal_name <> ''
  ) x;
  if tg_op = 'UPDATE' then
    -- A re-published guess that is no longer one (it is in old_rows only) still counted for the successes after it.
    select array_agg(distinct k) into recheck
    from (
      select r as k from unnest(recheck) as r
      union all
      select row(s.tenant_id, s.id, s.created_date_time)::signin_row_key
      from old_rows g
      cross join lateral (select s.tenant_id, s.id, s.created_date_time from sign_ins s
                          where s.tenant_id = g.tenant_id and s.user_principal_name = g.user_principal_name
                            and s.outcome = 'success' and s.created_date_time > g.created_date_time
                            and s.created_date_time <= g.created_date_time + interval '20 minutes'
                          offset 0) s
      where g.outcome in ('bad_credentials', 'locked') and g.user_principal_name <> ''
    ) x;
    delete from sign_in_success_after_failures t using unnest(recheck) as r
    where t.tenant_id = r.tenant_id and t.id = r.id and t.created_date_time = r.created_date_time;
  end if;
  insert into sign_in_success_after_failures
  select * from signin_success_after_failures_of(recheck) order by 1, 2, 3
  on conflict do nothing;

  -- New-country attempts. An inserted success removes the later attempts of its user and country within 14 days
  -- (they now have a baseline); nothing else an insert does can add a candidate but the inserted rows themselves.
  delete from sign_in_new_country_attempts t using new_rows n
  where n.outcome = 'success' and n.user_principal_name <> '' and t.tenant_id = n.tenant_id
    and t.user_principal_name = n.user_principal_name and t.country_or_region = n.location_country_or_region
    and t.created_date_time > n.created_date_time and t.created_date_time <= n.created_date_time + interval '14 days';
  if tg_op = 'UPDATE' then
    -- A success that changed (or is no longer one) may have been the baseline of later attempts: those, and the
    -- changed rows themselves, are recomputed.
    select array_agg(row(o.tenant_id, o.id, o.created_date_time)::signin_row_key) into gone_successes
    from old_rows o
    where o.outcome = 'success' and o.user_principal_name <> ''
      and not exists (select 1 from new_rows w
                      where w.tenant_id = o.tenant_id and w.id = o.id and w.created_date_time = o.created_date_time
                        and w.outcome = 'success' and w.user_principal_name = o.user_principal_name
                        and w.location_country_or_region = o.location_country_or_region);
    select array_agg(distinct k) into recheck
    from (
      select c as k from unnest(changed) as c
      union all
      select row(a.tenant_id, a.id, a.created_date_time)::signin_row_key
      from old_rows o
      cross join lateral (select a.tenant_id, a.id, a.created_date_time, a.status_error_code from sign_ins a
                          where a.tenant_id = o.tenant_id and a.user_principal_name = o.user_principal_name
                            and a.location_country_or_region = o.location_country_or_region
                            and a.created_date_time > o.created_date_time
                            and a.created_date_time <= o.created_date_time + interval '14 days'
                          offset 0) a
      where (o.tenant_id, o.id, o.created_date_time) in (select g.tenant_id, g.id, g.created_date_time
                                                         from unnest(gone_successes) as g)
        and signin_password_verified(a.status_error_code)
    ) x;
    delete from sign_in_new_country_attempts t using unnest(recheck) as r
    where t.tenant_id = r.tenant_id and t.id = r.id and t.created_date_time = r.created_date_time;
  else
    recheck := changed;
  end if;
  insert into sign_in_new_country_attempts
  select * from signin_new_country_attempts_of(recheck) order by 1, 2, 3
  on conflict do nothing;
  return null;
end
$$;

create trigger sign_ins_attempt_candidates_insert after insert on sign_ins
  referencing new table as new_rows for each statement execute function signin_write_attempt_candidates();
create trigger sign_ins_attempt_candidates_update after update on sign_ins
  referencing old table as old_rows new table as new_rows for each statement execute function signin_write_attempt_candidates();

-- Existing sign-ins (a no-op on a fresh database): the views' own conditions, over everything stored.
insert into sign_in_success_after_failures
select tenant_id, id, created_date_time, user_principal_name from v_success_after_failures;
insert into sign_in_new_country_attempts
select tenant_id, id, created_date_time, user_principal_name, country_or_region from v_new_country_attempts;

-- The same columns, computed as in 0022, for the candidates only.
create or replace view v_new_country_attempts as
select s.tenant_id, s.id, c.created_date_time, s.user_principal_name, s.location_country_or_region as country_or_region,
  s.location_city as city, s.ip_address, s.app_display_name, s.sign_in_event_type, s.status_error_code as error_code,
  s.outcome, s.autonomous_system_number, s.user_agent,
  exists (select 1 from sign_ins b
          where b.tenant_id = s.tenant_id and b.user_principal_name = s.user_principal_name and b.outcome = 'success'
            and b.created_date_time >= s.created_date_time - interval '14 days'
            and b.created_date_time < s.created_date_time) as has_baseline
from sign_in_new_country_attempts c
join sign_ins s on s.tenant_id = c.tenant_id and s.id = c.id and s.created_date_time = c.created_date_time;

create or replace view v_success_after_failures as
select s.tenant_id, s.id, c.created_date_time, s.user_principal_name, s.app_display_name, s.ip_address,
  s.location_country_or_region as country_or_region, f.failures_before, f.failure_ips, f.first_failure_at,
  s.ip_address = any (f.failure_ip_list) as success_from_failure_ip
from sign_in_success_after_failures c
join sign_ins s on s.tenant_id = c.tenant_id and s.id = c.id and s.created_date_time = c.created_date_time
cross join lateral (
  select count(*) as failures_before, count(distinct g.ip_address) as failure_ips, min(g.created_date_time) as first_failure_at,
    array_agg(distinct g.ip_address) as failure_ip_list
  from sign_ins g
  where g.tenant_id = s.tenant_id and g.user_principal_name = s.user_principal_name
    and g.outcome in ('bad_credentials', 'locked')
    and g.created_date_time >= s.created_date_time - interval '20 minutes' and g.created_date_time < s.created_date_time
) f;

-- ---------------------------------------------------------------------------------------------------------------
-- Password spray: the same result as 0022's function, computed in one pass per IP instead of one window count per
-- failed attempt (which cost ~0.3 ms per attempt of a large spray: seconds for a day with one).
--
-- A window [a, a + w) holds user u when one of u's failures r (at t) lies in it; count r only when it is u's last
-- failure in the window: t in [a, a + w) and u's next failure (next) at or after a + w, i.e. a in (t - w, min(t,
-- next - w)]. So the distinct users of the window starting at a are the intervals (lo, hi] holding a: a running sum
-- of +1 at each lo and -1 at each hi, read at each start a, with starts ordered before the opens and closes at the
-- same instant (an open at a does not count, a close at a still does). Only IPs with at least p_min_users distinct
-- failed users in the range plus one window are swept.
create or replace function signin_password_spray(p_from timestamptz, p_to timestamptz, p_min_users integer default 5,
  p_window interval default interval '20 minutes')
returns table (tenant_id text, ip_address text, burst_start timestamptz, burst_end timestamptz, failed_users bigint,
  failures bigint, successful_users bigint, countries text[], apps text[], error_codes integer[])
language sql stable parallel safe as $$
  with ips as (
    select f.tenant_id, f.ip_address
    from sign_ins f
    where f.outcome in ('bad_credentials', 'locked', 'disabled') and f.ip_address <> ''
      and f.created_date_time >= p_from and f.created_date_time < p_to + p_window
    group by f.tenant_id, f.ip_address
    having count(distinct f.user_principal_name) >= p_min_users
  ), g as (
    select f.tenant_id, f.ip_address, f.created_date_time as t,
      lead(f.created_date_time) over (partition by f.tenant_id, f.ip_address, f.user_principal_name
                                      order by f.created_date_time) as next_t
    from ips
    join sign_ins f on f.tenant_id = ips.tenant_id and f.ip_address = ips.ip_address
    where f.outcome in ('bad_credentials', 'locked', 'disabled')
      and f.created_date_time >= p_from and f.created_date_time < p_to + p_window
  ), ev as (
    select g.tenant_id, g.ip_address, g.t - p_window as at, 1 as kind, 1 as delta
    from g where g.next_t is distinct from g.t
    union all
    select g.tenant_id, g.ip_address, least(g.t, coalesce(g.next_t - p_window, g.t)), 1, -1
    from g where g.next_t is distinct from g.t
    union all
    select g.tenant_id, g.ip_address, g.t, 0, 0
    from g where g.t >= p_from and g.t < p_to
  ), sweep as (
    select ev.tenant_id, ev.ip_address, ev.at, ev.kind,
      sum(ev.delta) over (partition by ev.tenant_id, ev.ip_address order by ev.at, ev.kind
                          rows between unbounded preceding and current row) as users_in_window
    from ev
  ), starts as (
    select w.tenant_id, w.ip_address, w.at as t from sweep w where w.kind = 0 and w.users_in_window >= p_min_users
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

-- Down Migration
-- Not provided (the daemon only migrates up).
