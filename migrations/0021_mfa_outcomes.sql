-- Up Migration
-- Issue 13: MFA outcomes from the fields real tenants fill. v_mfa_outcomes_daily (0002, rollup 0015) kept the steps
-- whose authenticationStepRequirement matched '%multifactor%'; real values are "Multi-factor authentication" (Azure
-- Monitor schema), "MFA" (Graph examples) and, in production captures, "" for every step; and token claims
-- ("Previously satisfied", "Claim in access token") were counted as MFA prompts. Now an MFA step is chosen by
-- signin_mfa_steps(raw) below, the rollup keeps the step's result detail (declined / no response / fraud /
-- completed), and a 500121 event without such a step (v1.0 has no authenticationDetails) counts as one failed step
-- whose result detail is status.additionalDetails.
-- The rollup is rebuilt from sign_ins.raw (one pass over every sign-in: minutes at 10 M rows).

-- "Multi-factor authentication", "Multifactor authentication", "multiFactorAuthentication", "MFA" (any case).
create function signin_is_mfa_requirement(requirement text) returns boolean
language sql immutable parallel safe as $$
  select coalesce(requirement ~* '^\s*(multi-?factor ?authentication|mfa)\s*$', false)
$$;

-- The MFA steps of a sign-in: authenticationDetails steps with a method that is neither the password nor a token
-- claim, when the step's requirement or the sign-in's authenticationRequirement asks for multifactor (production
-- steps have an empty requirement, so the sign-in's decides); else, for error 500121, one failed step without method.
create function signin_mfa_steps(raw jsonb)
returns table (authentication_method text, succeeded boolean, step_result_detail text)
language sql immutable parallel safe as $$
  with steps as (
    select signin_text(d.v -> 'authenticationMethod') as method, signin_bool(d.v -> 'succeeded') as ok,
      signin_text(d.v -> 'authenticationStepResultDetail') as detail
    from jsonb_array_elements(signin_array(raw -> 'authenticationDetails')) as d(v)
    where signin_text(d.v -> 'authenticationMethod') !~* '^\s*(password|previously satisfied|claim in .*token)\s*$'
      and coalesce(signin_text(d.v -> 'authenticationStepResultDetail'), '') !~* 'satisfied by claim in the token'
      and (signin_is_mfa_requirement(signin_text(d.v -> 'authenticationStepRequirement'))
        or signin_is_mfa_requirement(signin_text(raw -> 'authenticationRequirement')))
  )
  select method, ok, detail from steps
  union all
  select null, false, signin_text(raw -> 'status' -> 'additionalDetails')
  where signin_int(raw -> 'status' -> 'errorCode') = 500121 and not exists (select 1 from steps)
$$;

alter table sign_in_mfa_rollup_daily drop constraint sign_in_mfa_rollup_daily_key,
  add column step_result_detail text,
  add constraint sign_in_mfa_rollup_daily_key unique nulls not distinct (day, tenant_id, authentication_method,
    succeeded, step_result_detail);

create or replace function signin_write_mfa_rollup() returns trigger
language plpgsql as $$
begin
  if tg_op = 'UPDATE' then
    insert into sign_in_mfa_rollup_daily as r (day, tenant_id, authentication_method, succeeded, step_result_detail, steps)
    select signin_day(d.created_date_time), d.tenant_id, s.authentication_method, s.succeeded, s.step_result_detail,
      sum(d.n)
    from (
      select o.tenant_id, o.created_date_time, o.raw, -1 as n from old_rows o
      union all
      select w.tenant_id, w.created_date_time, w.raw, 1 as n from new_rows w
    ) d
    cross join lateral signin_mfa_steps(d.raw) s
    group by 1, 2, 3, 4, 5
    having sum(d.n) <> 0
    order by 1, 2, 3, 4, 5
    on conflict (day, tenant_id, authentication_method, succeeded, step_result_detail) do update
      set steps = r.steps + excluded.steps;

    delete from sign_in_mfa_rollup_daily r
    where r.steps = 0
      and (r.day, r.tenant_id) in (select distinct signin_day(o.created_date_time), o.tenant_id from old_rows o);
  else
    insert into sign_in_mfa_rollup_daily as r (day, tenant_id, authentication_method, succeeded, step_result_detail, steps)
    select signin_day(w.created_date_time), w.tenant_id, s.authentication_method, s.succeeded, s.step_result_detail,
      count(*)
    from new_rows w
    cross join lateral signin_mfa_steps(w.raw) s
    group by 1, 2, 3, 4, 5
    order by 1, 2, 3, 4, 5
    on conflict (day, tenant_id, authentication_method, succeeded, step_result_detail) do update
      set steps = r.steps + excluded.steps;
  end if;
  return null;
end
$$;

-- The migration runs in one transaction: no upsert can interleave with the rebuild.
delete from sign_in_mfa_rollup_daily;
insert into sign_in_mfa_rollup_daily (day, tenant_id, authentication_method, succeeded, step_result_detail, steps)
select signin_day(n.created_date_time), n.tenant_id, s.authentication_method, s.succeeded, s.step_result_detail, count(*)
from sign_ins n
cross join lateral signin_mfa_steps(n.raw) s
group by 1, 2, 3, 4, 5;

-- Same columns, plus step_result_detail at the end; rows are per result detail now, so sum(steps) over what you
-- group by (as every documented query does).
create or replace view v_mfa_outcomes_daily as
select tenant_id, day, authentication_method, succeeded, steps, step_result_detail
from sign_in_mfa_rollup_daily;

-- Down Migration
-- Not provided (the daemon only migrates up); restore a backup taken before 0021.
