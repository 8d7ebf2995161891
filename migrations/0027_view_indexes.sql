-- Up Migration
-- Faster audit, privileged-user and success-then-failure views (docs/performance-views.md, "Migration 0027"), on a
-- simulator that looks like a real tenant (a few dozen role holders, a few ASNs per user, a handful of consents and
-- security-info changes a day). Same columns, same rows: indexes are added and three views are rewritten; no trigger.

-- 1. Directory-audit views filtered on the last day or month. directory_audits_activity_idx (0023) leads with the
-- tenant, so a window over every tenant read the whole activity range of the index or the table: 20-140 ms for a day
-- with no rows. Each view's own condition as a partial index on the time (the planner uses one when the query's
-- condition implies its predicate: the same expression), so a window reads only its activities' rows.
create index directory_audits_role_time_idx on directory_audits (activity_date_time)
  where activity_display_name in ('Add member to role', 'Add eligible member to role', 'Add member to role outside of PIM',
    'Add member to role completed (PIM activation)');
create index directory_audits_consent_time_idx on directory_audits (activity_date_time)
  where activity_display_name = 'Consent to application';
create index directory_audits_credential_time_idx on directory_audits (activity_date_time)
  where btrim(activity_display_name) in ('Add service principal credentials',
    'Update application – Certificates and secrets management', 'Update application - Certificates and secrets management',
    'Remove service principal credentials');
create index directory_audits_ca_policy_time_idx on directory_audits (activity_date_time)
  where activity_display_name in ('Add conditional access policy', 'Update conditional access policy',
    'Delete conditional access policy');
create index directory_audits_security_info_time_idx on directory_audits (activity_date_time)
  where activity_display_name ilike '%security info%';
create index directory_audits_invitation_time_idx on directory_audits (activity_date_time)
  where activity_display_name = 'Invite external user';

-- 2. v_privileged_users reads the role names from directory_audit_modified_properties: without an index on the
-- property's name it read every property row of every audit (about 4 a change), 0.3 s at 150,000 audits, and every
-- privileged view (sign-ins without CA, new ASN, security-info changes) paid it again.
create index directory_audit_modified_properties_role_idx on directory_audit_modified_properties (tenant_id, audit_id,
  target_ordinal) include (new_json) where name = 'Role.DisplayName';

-- 3. v_success_then_failure_other_ip (#12): the failures it considers, with the columns its probe needs, as a
-- partial covering index read index-only; sign_ins is read for the few failures that follow such a success only
-- (a lateral subquery that depends on the probe's result, kept apart by `offset 0`, so the planner cannot join it
-- first). Before, every failure of the range (about 1,400 a day here) was read from the heap.
create index sign_ins_failure_other_ip_idx on sign_ins (created_date_time, tenant_id)
  include (id, user_principal_name, app_display_name, ip_address)
  where is_failure and user_principal_name <> '' and ip_address <> '' and coalesce(status_failure_reason, '') <> 'Other'
    and app_display_name not in ('Office 365 Exchange Online', 'Skype for Business Online');

create or replace view v_success_then_failure_other_ip as
select c.tenant_id, c.id, c.created_date_time, c.user_principal_name, c.app_display_name, c.ip_address,
  f.location_country_or_region as country_or_region, f.status_error_code as error_code,
  f.status_failure_reason as failure_reason, s.id as success_id, s.created_date_time as success_at,
  s.ip_address as success_ip_address,
  signin_known_network(c.tenant_id, f.ip) as from_known_network
from sign_ins c
cross join lateral (
  select o.id, o.created_date_time, o.ip_address
  from sign_ins o
  where o.tenant_id = c.tenant_id and o.user_principal_name = c.user_principal_name and o.outcome = 'success'
    and o.created_date_time >= c.created_date_time - interval '10 minutes' and o.created_date_time < c.created_date_time
    and o.app_display_name = c.app_display_name
    and signin_ip_prefix(o.ip_address) is distinct from signin_ip_prefix(c.ip_address) and o.ip_address <> ''
  order by o.created_date_time desc
  limit 1
) s
cross join lateral (
  select f.location_country_or_region, f.status_error_code, f.status_failure_reason, f.ip
  from sign_ins f
  where f.tenant_id = c.tenant_id and f.id = c.id and f.created_date_time = c.created_date_time and s.id is not null
  offset 0
) f
where c.is_failure and c.user_principal_name <> '' and c.ip_address <> ''
  and coalesce(c.status_failure_reason, '') <> 'Other'
  and c.app_display_name not in ('Office 365 Exchange Online', 'Skype for Business Online');

-- 4. The privileged-user views (#16, #17) join v_privileged_users' spellings to sign_ins. The spellings are collated
-- "C" (v_privileged_users sorts them so), and an equality in another collation than the index's cannot use an
-- index: sign_ins_user_idx was never probed. Every success of the range was read and hash-joined, and #17 ran its
-- 14-day probe on each of them before the join (558,827 probes, 8 s, for 117 rows over 20 days). The join now
-- compares in the default collation (equality is the same in both: they are deterministic), and the spellings come
-- from a function that says it returns about 2 rows (plpgsql, so that the estimate is not inlined away; unnest's
-- default of 10 a user made a hash join look cheaper than the probes).
create function signin_each_spelling(spellings text[]) returns setof text
language plpgsql immutable strict parallel safe rows 2 as $$
begin
  return query select unnest(spellings);
end
$$;

create or replace view v_privileged_sign_ins_without_ca as
select s.tenant_id, s.id, s.created_date_time, s.user_principal_name, s.app_display_name, s.ip_address,
  s.location_country_or_region as country_or_region, s.conditional_access_status, s.authentication_requirement,
  array_remove(array[
    case when coalesce(s.conditional_access_status, '') <> 'success' then 'not_gated_by_ca' end,
    case when s.authentication_requirement = 'singleFactorAuthentication' then 'single_factor' end], null) as reasons,
  p.sources as privileged_sources
from v_privileged_users p
cross join lateral signin_each_spelling(p.spellings) as u(spelling)
join sign_ins s on s.tenant_id = p.tenant_id and s.user_principal_name = u.spelling collate "default"
where s.outcome = 'success'
  and (coalesce(s.conditional_access_status, '') <> 'success' or s.authentication_requirement = 'singleFactorAuthentication');

create or replace view v_privileged_new_asn as
select s.tenant_id, s.id, s.created_date_time, s.user_principal_name, s.autonomous_system_number, s.ip_address,
  s.location_country_or_region as country_or_region, s.app_display_name,
  exists (select 1 from sign_ins b
          where b.tenant_id = s.tenant_id and b.user_principal_name = s.user_principal_name and b.outcome = 'success'
            and b.created_date_time >= s.created_date_time - interval '14 days'
            and b.created_date_time < s.created_date_time) as has_baseline,
  signin_known_network(s.tenant_id, s.ip) as from_known_network,
  p.sources as privileged_sources
from v_privileged_users p
cross join lateral signin_each_spelling(p.spellings) as u(spelling)
join sign_ins s on s.tenant_id = p.tenant_id and s.user_principal_name = u.spelling collate "default"
where s.outcome = 'success' and s.autonomous_system_number is not null
  -- A probe per row (limit 1), never a hash anti-join (0024).
  and (select 1 from sign_ins b
       where b.tenant_id = s.tenant_id and b.user_principal_name = s.user_principal_name and b.outcome = 'success'
         and b.autonomous_system_number = s.autonomous_system_number
         and b.created_date_time >= s.created_date_time - interval '14 days' and b.created_date_time < s.created_date_time
       limit 1) is null;

-- Down Migration
-- Not provided (the daemon only migrates up).
