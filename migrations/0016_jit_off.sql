-- Up Migration
-- JIT compilation off for this database. Its queries are index scans and small aggregates over rollups; the
-- planner's cost estimates for some (a correlated subquery per row, the rollup triggers' grouped upserts) still cross
-- jit_above_cost, and compiling then costs more than it saves: at 10 M sign-ins, v_risky_sign_ins for 30 days took
-- 0.93 s of which 0.79 s was JIT compilation (docs/performance-views.md). Only new sessions see the setting. Needs
-- the database's owner; otherwise the migration leaves a notice and the setting as it was.
do $$
begin
  execute format('alter database %I set jit = off', current_database());
exception when insufficient_privilege then
  raise notice 'jit left as configured (%); as the database owner run: alter database % set jit = off',
    sqlerrm, current_database();
end
$$;

-- Down Migration
do $$
begin
  execute format('alter database %I reset jit', current_database());
exception when insufficient_privilege then
  null;
end
$$;
