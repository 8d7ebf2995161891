-- Up Migration
-- Faster audit, privileged-user and success-then-failure views (docs/performance-views.md, "Migration 0027"), on a
-- simulator that looks like a real tenant (a few dozen role holders, a few ASNs per user, a handful of consents and
-- security-info changes a day). Same columns, same rows: only indexes are added and one view is rewritten.

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

-- Down Migration
-- Not provided (the daemon only migrates up).
