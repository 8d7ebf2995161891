-- Up Migration
-- Issue 14: sign_in_ca_policies keeps a row only for a Conditional Access policy that applied to the sign-in: its
-- result is success, failure, reportOnlySuccess, reportOnlyFailure, reportOnlyInterrupted, unknown or absent.
-- 0025 dropped the notEnabled rows; this drops `notApplied` and `reportOnlyNotApplied` as well: the policy was
-- evaluated and its conditions did not match (a user, app or location outside its scope), which is what most
-- policies of a tenant answer on most sign-ins. Measured (docs/benchmarks.md, the realistic bench: 10 policies per
-- sign-in, 3 notEnabled and ~6 not applied): the table fell from ~7 rows (3,069 bytes) per sign-in to ~1 and its
-- trigger's share of a page's write time with it. Nothing is lost:
--   * raw keeps the whole appliedConditionalAccessPolicies array (with conditionsNotSatisfied, which says why a
--     policy did not apply, and which this table never had);
--   * sign_in_ca_rollup_daily (v_ca_policy_outcomes_daily, the dashboard's CA panel) is computed from raw and keeps
--     counting every outcome, notApplied included, per policy and day;
--   * `ordinal` stays the policy's 1-based position in raw.appliedConditionalAccessPolicies.
-- signin_ca_row_kept is the one definition of which results get a row (the trigger and the tests use it).
-- Existing rows of the results no longer kept are deleted (one pass over the table).

create function signin_ca_row_kept(result text) returns boolean
language sql immutable parallel safe as $$
  select coalesce(result, '') not in ('notEnabled', 'notApplied', 'reportOnlyNotApplied')
$$;

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
  where signin_ca_row_kept(signin_text(p.v -> 'result'));

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

delete from sign_in_ca_policies where not signin_ca_row_kept(result);

-- Down Migration
-- Not provided (the daemon only migrates up): 0025's function would write the notApplied rows again for new
-- sign-ins only; restore a backup taken before 0028 for the old rows.
