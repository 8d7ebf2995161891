-- Up Migration
-- Issue 13, build point 3 (audit half): views over directory_audits for the audit detections of docs/detections.md
-- (#19 app credentials, #21 consent, #22 role assignments, #23 security info, #24 Conditional Access policies, #25
-- guest invitations). Until the child tables of build point 2 exist, the targets and modified properties are read
-- from raw with the drift-tolerant helpers below; audit volumes are small (a few per user per day), and every view
-- keeps activity_date_time for the caller's filter (directory_audits_tenant_time_idx).

-- Modified-property values are JSON inside a string ("\"Global Administrator\"", "[\"…\"]"): the string's content
-- when the text is a JSON string, the text itself otherwise (null stays null).
create function signin_json_text(t text) returns text
language plpgsql immutable parallel safe as $$
begin
  if t is null or t !~ '^\s*"' then
    return t;
  end if;
  return t::jsonb #>> '{}';
exception when others then
  return t;
end
$$;

-- The `state` of a Conditional Access policy whose JSON is given as text (possibly JSON-in-a-string); null when the
-- text is no such JSON.
create function signin_json_state(t text) returns text
language plpgsql immutable parallel safe as $$
declare
  j jsonb;
begin
  if t is null then
    return null;
  end if;
  j := t::jsonb;
  if jsonb_typeof(j) = 'string' then
    j := (j #>> '{}')::jsonb;
  end if;
  return case when jsonb_typeof(j) = 'object' then j ->> 'state' end;
exception when others then
  return null;
end
$$;

-- The first modifiedProperties element named `name` among an audit's targetResources, as jsonb (null when absent).
create function signin_audit_property(raw jsonb, name text) returns jsonb
language sql immutable parallel safe as $$
  select p.v
  from jsonb_array_elements(signin_array(raw -> 'targetResources')) as t(v)
  cross join lateral jsonb_array_elements(signin_array(t.v -> 'modifiedProperties')) as p(v)
  where signin_text(p.v -> 'displayName') = name
  limit 1
$$;

-- The first target of a type (User, ServicePrincipal, Application, Policy, …), as jsonb.
create function signin_audit_target(raw jsonb, target_type text) returns jsonb
language sql immutable parallel safe as $$
  select t.v from jsonb_array_elements(signin_array(raw -> 'targetResources')) as t(v)
  where signin_text(t.v -> 'type') = target_type
  limit 1
$$;

-- additionalDetails[key = …].value (e.g. User-Agent, AppId).
create function signin_audit_detail(raw jsonb, detail_key text) returns text
language sql immutable parallel safe as $$
  select signin_text(d.v -> 'value') from jsonb_array_elements(signin_array(raw -> 'additionalDetails')) as d(v)
  where signin_text(d.v -> 'key') = detail_key
  limit 1
$$;

-- #22 (Sentinel UserAssignedPrivilegedRole, PrivlegedRoleAssignedOutsidePIM): role assignments, with the role's name
-- and whether the assignment bypassed Privileged Identity Management.
create view v_role_assignments as
select a.tenant_id, a.id, a.activity_date_time, a.activity_display_name, a.result,
  coalesce(a.initiated_by_user_principal_name, a.initiated_by_app_display_name) as initiated_by, a.initiated_by_ip_address,
  signin_text(t.v -> 'type') as target_type, signin_text(t.v -> 'id') as target_id,
  signin_text(t.v -> 'userPrincipalName') as target_user_principal_name, signin_text(t.v -> 'displayName') as target_display_name,
  signin_json_text(signin_text(signin_audit_property(a.raw, 'Role.DisplayName') -> 'newValue')) as role_display_name,
  a.activity_display_name = 'Add member to role outside of PIM'
    or (a.logged_by_service = 'Core Directory' and a.activity_display_name = 'Add member to role'
        and coalesce(a.initiated_by_app_display_name, '') not in ('MS-PIM', 'MS-PIM-Fairfax')) as outside_pim
from directory_audits a
left join lateral (
  select t.v from jsonb_array_elements(signin_array(a.raw -> 'targetResources')) as t(v)
  where signin_text(t.v -> 'type') in ('User', 'ServicePrincipal')
  limit 1
) t on true
where a.activity_display_name in ('Add member to role', 'Add eligible member to role', 'Add member to role outside of PIM',
  'Add member to role completed (PIM activation)');

-- #21 (Sentinel RareApplicationConsent, SuspiciousOAuthApp_OfflineAccess): consent grants.
create view v_consent_grants as
select a.tenant_id, a.id, a.activity_date_time, a.result,
  coalesce(a.initiated_by_user_principal_name, a.initiated_by_app_display_name) as initiated_by, a.initiated_by_ip_address,
  signin_text(signin_audit_target(a.raw, 'ServicePrincipal') -> 'displayName') as service_principal_name,
  signin_text(signin_audit_target(a.raw, 'ServicePrincipal') -> 'id') as service_principal_id,
  lower(signin_json_text(signin_text(signin_audit_property(a.raw, 'ConsentContext.IsAdminConsent') -> 'newValue')))
    = 'true' as is_admin_consent,
  signin_json_text(signin_text(signin_audit_property(a.raw, 'ConsentAction.Permissions') -> 'newValue')) as permissions,
  signin_audit_detail(a.raw, 'User-Agent') as user_agent
from directory_audits a
where a.activity_display_name = 'Consent to application';

-- #19 (Sentinel NewAppOrServicePrincipalCredential): credentials added to applications and service principals; the
-- key ids present in KeyDescription's new value and not in its old one. The activity names vary ("Update
-- application – Certificates and secrets management" with an en dash, often a trailing space).
create view v_app_credential_changes as
select a.tenant_id, a.id, a.activity_date_time, btrim(a.activity_display_name) as activity_display_name, a.result,
  coalesce(a.initiated_by_user_principal_name, a.initiated_by_app_display_name) as initiated_by, a.initiated_by_ip_address,
  signin_text(t.v -> 'type') as target_type, signin_text(t.v -> 'id') as target_id,
  signin_text(t.v -> 'displayName') as target_display_name,
  array(select m[1] from regexp_matches(coalesce(signin_text(k.v -> 'newValue'), ''), 'KeyIdentifier=([0-9a-fA-F-]+)', 'g') m
        except
        select m[1] from regexp_matches(coalesce(signin_text(k.v -> 'oldValue'), ''), 'KeyIdentifier=([0-9a-fA-F-]+)', 'g') m
  ) as added_key_ids,
  coalesce(signin_text(k.v -> 'oldValue'), '[]') not in ('[]', '') as had_keys_before,
  signin_audit_detail(a.raw, 'User-Agent') as user_agent
from directory_audits a
cross join lateral (select signin_audit_property(a.raw, 'KeyDescription') as v) k
left join lateral (
  select t.v from jsonb_array_elements(signin_array(a.raw -> 'targetResources')) as t(v)
  where signin_text(t.v -> 'type') in ('Application', 'ServicePrincipal')
  limit 1
) t on true
where btrim(a.activity_display_name) in ('Add service principal credentials', 'Update application – Certificates and secrets management',
  'Update application - Certificates and secrets management', 'Remove service principal credentials');

-- #24 (Sentinel "Conditional Access - A Conditional Access policy was disabled/deleted/updated…"): policy changes
-- with the policy's state before and after (its JSON sits in a string in modifiedProperties).
create view v_ca_policy_changes as
select a.tenant_id, a.id, a.activity_date_time, a.activity_display_name, a.result,
  coalesce(a.initiated_by_user_principal_name, a.initiated_by_app_display_name) as initiated_by,
  signin_text(signin_audit_target(a.raw, 'Policy') -> 'displayName') as policy_name,
  signin_text(signin_audit_target(a.raw, 'Policy') -> 'id') as policy_id,
  signin_json_state(signin_text(p.v -> 'oldValue')) as old_state,
  signin_json_state(signin_text(p.v -> 'newValue')) as new_state
from directory_audits a
left join lateral (
  select x.v from jsonb_array_elements(signin_array(signin_audit_target(a.raw, 'Policy') -> 'modifiedProperties')) as x(v)
  limit 1
) p on true
where a.activity_display_name in ('Add conditional access policy', 'Update conditional access policy',
  'Delete conditional access policy');

-- #23 (Sentinel AuthenticationMethodsChangedforPrivilegedAccount): security info (MFA method) registered, changed or
-- deleted, with the target user.
create view v_security_info_changes as
select a.tenant_id, a.id, a.activity_date_time, a.activity_display_name, a.result, a.result_reason,
  coalesce(a.initiated_by_user_principal_name, a.initiated_by_app_display_name) as initiated_by, a.initiated_by_ip_address,
  coalesce(signin_text(signin_audit_target(a.raw, 'User') -> 'userPrincipalName'), a.initiated_by_user_principal_name)
    as target_user_principal_name
from directory_audits a
where a.activity_display_name ilike '%security info%';

-- #25 (Sentinel GuestUsersInvitedtoTenantbyNewInviters): invitations, flagged when the inviter invited nobody in
-- the 14 days before.
create view v_guest_invitations as
select a.tenant_id, a.id, a.activity_date_time, a.result, a.initiated_by_user_principal_name as inviter,
  a.initiated_by_ip_address, signin_text(signin_audit_target(a.raw, 'User') -> 'userPrincipalName') as invited_user_principal_name,
  not exists (
    select 1 from directory_audits b
    where b.tenant_id = a.tenant_id and b.activity_display_name = 'Invite external user'
      and b.initiated_by_user_principal_name = a.initiated_by_user_principal_name
      and b.activity_date_time >= a.activity_date_time - interval '14 days' and b.activity_date_time < a.activity_date_time
  ) as new_inviter
from directory_audits a
where a.activity_display_name = 'Invite external user';

create index directory_audits_activity_idx on directory_audits (tenant_id, activity_display_name, activity_date_time);

-- Down Migration
-- Not provided (the daemon only migrates up).
