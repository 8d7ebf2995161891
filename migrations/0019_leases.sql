-- Up Migration
-- Coordination between replicas: who is alive (replicas, one heartbeat row per process) and who polls each
-- (tenant, stream) (stream_leases, renewed by the holder's heartbeats, taken over by another replica once expired).
-- A lease is free when expired, or when its holder's heartbeat session no longer exists (a killed process's
-- streams are taken over at the next tick, as its advisory locks used to be).
-- Replaces the session advisory locks (any login, the read-only BI role included, could take them and stop
-- ingestion) and the replica count read from pg_stat_activity.application_name (any login could fake it): only
-- the daemon's role can write these tables. Times are the database's now(), on every replica alike.
create table replicas (
  id text primary key,
  -- run: a daemon (counted when sharing the streams); once and backfill hold leases but are not counted.
  kind text not null check (kind in ('run', 'once', 'backfill')),
  host text not null,
  pid integer not null,
  started_at timestamptz not null default now(),
  heartbeat_at timestamptz not null default now(),
  -- the session its heartbeats use (pg_stat_activity pid and backend_start): when that session is gone, the
  -- process is gone (or cut off), and its leases are free at once instead of after their expiry
  backend_pid integer,
  backend_start timestamptz
);

create table stream_leases (
  tenant_id text not null,
  -- a stream name, or "<stream>/backfill" for the backfill of that stream
  stream text not null,
  holder text not null references replicas (id) on delete cascade,
  acquired_at timestamptz not null,
  expires_at timestamptz not null,
  primary key (tenant_id, stream)
);
create index stream_leases_holder_idx on stream_leases (holder);

-- 0002's default privileges give signin_reader SELECT on every new table. Not these: the BI role gets nothing here
-- (not even a lock on them).
revoke all on replicas, stream_leases from public;
do $$
begin
  if exists (select 1 from pg_roles where rolname = 'signin_reader') then
    revoke all on replicas, stream_leases from signin_reader;
  end if;
exception when insufficient_privilege then
  raise notice 'signin_reader privileges on replicas, stream_leases left as they were: %', sqlerrm;
end
$$;

-- Down Migration
drop table if exists stream_leases, replicas;
