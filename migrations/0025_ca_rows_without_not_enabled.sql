-- Up Migration
-- Issue 14: sign_in_ca_policies keeps one row per applied Conditional Access policy that was evaluated: a policy
-- whose result is `notEnabled` (switched off, listed on every sign-in of the tenant) gets no child row any more.
-- On real tenants most listed policies are disabled ones: each such row cost ~450 bytes on disk (heap and primary
-- key) per policy per sign-in, for a fact that is the same on every sign-in. Nothing is lost:
--   * raw keeps the whole appliedConditionalAccessPolicies array;
--   * sign_in_ca_rollup_daily (v_ca_policy_outcomes_daily) is computed from raw, not from this table, and keeps
--     counting notEnabled outcomes per policy and day;
--   * `ordinal` stays the policy's 1-based position in raw.appliedConditionalAccessPolicies (ordinals of the
--     notEnabled policies are simply absent).
-- Existing notEnabled rows are deleted (one pass over the table; its space is reused by later rows).

create or replace function signin_write_children() returns trigger
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
  cross join lateral jsonb_array_elements(signin_array(n.raw -> 'appliedConditionalAccessPolicies')) with ordinality as p(v, ordinal)
  where signin_text(p.v -> 'result') is distinct from 'notEnabled';

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

delete from sign_in_ca_policies where result = 'notEnabled';

-- Down Migration
-- Not provided (the daemon only migrates up): 0002's function would write the notEnabled rows again for new
-- sign-ins only; restore a backup taken before 0025 for the old rows.
