-- Up Migration
-- Faster SOC hunting views and functions (docs/performance-views.md, "Migration 0029"). Same columns, same rows for
-- the same data, same parameters: the spray function is rewritten, one candidate table gets a covering index and
-- v_new_country_attempts reads it per row. No index or trigger on sign_ins is added or changed.

-- ---------------------------------------------------------------------------------------------------------------
-- 1. signin_password_spray: 0024's function read the failures of the range three times (the IPs with enough users,
-- their failures, and again per burst for the aggregates) and swept three events per failure (open, close, start)
-- through a sort of all of them. Now the failures are read once, index-only (sign_ins_guess_ip_idx covers every
-- column used), and kept in a CTE that the burst aggregates read again; and the users of the window starting at each
-- failure come from two window aggregates over the failures themselves in time order, instead of a sweep of three
-- events per failure. (0024's pre-filter of IPs with at least p_min_users failed users is gone: a window never holds
-- more users than its IP failed for in the range, so such IPs had no qualifying start anyway, and the filter cost
-- two aggregates and a join for ~15 % fewer rows.)
--
-- 0024 counted, at a start a, the intervals (lo, hi] of the failures r that are their user's last in a window (next
-- failure of the user `next` distinct from its own time t): lo = t - w, hi = least(t, next - w); users(a) = #{lo < a}
-- - #{hi < a}. Split hi by its two cases and map `next - w < a` to the user's next failure r' (whose previous one,
-- prev, is r):
--   #{lo < a}          = #{r : next distinct from t, t < a + w}
--   #{hi < a, hi = t}  = #{r : next is null or next <> t and next >= t + w, t < a}
--   #{hi < a, hi < t}  = #{r': prev is not null, prev <> t, t < prev + w, t < a + w}
-- The first and third are one running sum over rows with t < a + w (a RANGE frame ending at w - 1 µs following:
-- timestamps are whole microseconds), the second one over rows with t < a (ending 1 µs preceding). Each row is a
-- start. A burst is the run of qualifying starts each within w of the one before: its first start is one more than w
-- after its predecessor, its last one more than w before its successor, so a burst is read from those two rows in
-- the same order (no sort and grouping by a burst number). A window of zero or less (which 0024 answered with no
-- rows: every burst's range was empty) keeps the frame offsets valid and still yields none.
-- Partitions are compared in collation "C": equality is the same for deterministic collations, and sorting on it
-- skips the locale's comparison. (Measured: docs/performance-views.md.)
create or replace function signin_password_spray(p_from timestamptz, p_to timestamptz, p_min_users integer default 5,
  p_window interval default interval '20 minutes')
returns table (tenant_id text, ip_address text, burst_start timestamptz, burst_end timestamptz, failed_users bigint,
  failures bigint, successful_users bigint, countries text[], apps text[], error_codes integer[])
language sql stable parallel safe as $$
  with f as materialized (
    select f.tenant_id, f.ip_address, f.user_principal_name, f.created_date_time as t, f.location_country_or_region,
      f.app_display_name, f.status_error_code
    from sign_ins f
    where f.outcome in ('bad_credentials', 'locked', 'disabled') and f.ip_address <> ''
      and f.created_date_time >= p_from and f.created_date_time < p_to + p_window
  ), g as (
    select f.tenant_id, f.ip_address, f.t,
      lead(f.t) over u as next_t, lag(f.t) over u as prev_t
    from f
    window u as (partition by f.tenant_id collate "C", f.ip_address collate "C", f.user_principal_name collate "C"
                 order by f.t)
  ), counted as (
    select g.tenant_id, g.ip_address, g.t,
      coalesce(sum(case when g.next_t is distinct from g.t then 1 else 0 end
                   - case when g.prev_t is not null and g.prev_t <> g.t and g.t < g.prev_t + p_window then 1 else 0 end)
        over (partition by g.tenant_id collate "C", g.ip_address collate "C" order by g.t
              range between unbounded preceding and
                greatest(p_window, interval '1 microsecond') - interval '1 microsecond' following), 0)
      - coalesce(sum(case when g.next_t is null or g.next_t <> g.t and g.next_t >= g.t + p_window then 1 else 0 end)
        over (partition by g.tenant_id collate "C", g.ip_address collate "C" order by g.t
              range between unbounded preceding and interval '1 microsecond' preceding), 0) as users_in_window
    from g
  ), starts as (
    select c.tenant_id, c.ip_address, c.t from counted c
    where c.t >= p_from and c.t < p_to and c.users_in_window >= p_min_users
  ), edges as (
    select s.tenant_id, s.ip_address, s.t,
      lag(s.t) over w as prev, lead(s.t) over w as next
    from starts s
    window w as (partition by s.tenant_id collate "C", s.ip_address collate "C" order by s.t)
  ), bounds as (
    select e.tenant_id, e.ip_address, e.t, e.prev is null or e.t > e.prev + p_window as opens,
      e.next is null or e.next > e.t + p_window as closes
    from edges e
  ), bursts as (
    select b.tenant_id, b.ip_address, b.t as burst_start, b.last_t + p_window as burst_end
    from (select o.tenant_id, o.ip_address, o.t, o.opens,
            case when o.closes then o.t
                 else lead(o.t) over (partition by o.tenant_id collate "C", o.ip_address collate "C" order by o.t) end
              as last_t
          from bounds o where o.opens or o.closes) b
    where b.opens
  ), agg as (
    -- Per burst, over the failures already read (a burst lies in [p_from, p_to + p_window)).
    select b.tenant_id, b.ip_address, b.burst_start, b.burst_end, x.*
    from bursts b
    cross join lateral (
      select count(distinct r.user_principal_name) as failed_users, count(*) as failures,
        array_agg(distinct r.location_country_or_region) filter (where r.location_country_or_region <> '') as countries,
        array_agg(distinct r.app_display_name) filter (where r.app_display_name <> '') as apps,
        array_agg(distinct r.status_error_code) as error_codes
      from f r
      where r.tenant_id = b.tenant_id and r.ip_address = b.ip_address and r.t >= b.burst_start and r.t < b.burst_end
    ) x
  )
  select a.tenant_id, a.ip_address, a.burst_start, a.burst_end, a.failed_users, a.failures, ok.successful_users,
    a.countries, a.apps, a.error_codes
  from agg a
  cross join lateral (
    select count(distinct o.user_principal_name) as successful_users
    from sign_ins o
    where o.tenant_id = a.tenant_id and o.ip_address = a.ip_address
      and o.created_date_time >= p_from and o.created_date_time < p_to
      and signin_password_verified(o.status_error_code)
  ) ok
  where a.failed_users > ok.successful_users
$$;

-- ---------------------------------------------------------------------------------------------------------------
-- 2. v_new_country_attempts: the candidate table is rewritten by its trigger (an inserted success deletes the later
-- attempts of its user and country), so a table of ~11,000 rows took 3,700 pages after a backwards load (backfills
-- go backwards too) and the planner read it with a parallel seq scan (24 hours: 20-60 ms). A covering index on the
-- time answers the window index-only (it replaces sign_in_new_country_attempts_time_idx, which no statement of the
-- trigger uses); and each candidate's sign-in is fetched by its key in a lateral subquery (`offset 0`), because with
-- the cheaper scan the planner hash-joined 30 days of candidates with a parallel seq scan of every sign-in of the
-- window (0.63 s instead of 0.12-0.19 s).
create index sign_in_new_country_attempts_time_covering_idx on sign_in_new_country_attempts (created_date_time,
  tenant_id) include (id);
drop index sign_in_new_country_attempts_time_idx;

-- The key columns come from the candidate (equal to the sign-in's by the lateral's condition), so that a filter on
-- tenant_id or id (Grafana's `tenant_id in ($tenant)`) still narrows the candidates read, as 0024's join did.
create or replace view v_new_country_attempts as
select c.tenant_id, c.id, c.created_date_time, s.user_principal_name, s.location_country_or_region as country_or_region,
  s.location_city as city, s.ip_address, s.app_display_name, s.sign_in_event_type, s.status_error_code as error_code,
  s.outcome, s.autonomous_system_number, s.user_agent,
  exists (select 1 from sign_ins b
          where b.tenant_id = s.tenant_id and b.user_principal_name = s.user_principal_name and b.outcome = 'success'
            and b.created_date_time >= s.created_date_time - interval '14 days'
            and b.created_date_time < s.created_date_time) as has_baseline
from sign_in_new_country_attempts c
cross join lateral (
  select s.* from sign_ins s
  where s.tenant_id = c.tenant_id and s.id = c.id and s.created_date_time = c.created_date_time
  offset 0
) s;

-- Down Migration
-- Not provided (the daemon only migrates up).
