-- Up Migration
-- The coverage ledger: every [window_from, window_to] of a (tenant, stream) that was read completely (every page
-- stored), written in the same transaction as the window's last page. Re-reads of a window update its row.
create table coverage (
  tenant_id text not null,
  stream text not null,
  window_from timestamptz not null,
  window_to timestamptz not null,
  -- when the window was first completely read, and most recently re-read
  first_read_at timestamptz not null,
  last_read_at timestamptz not null,
  reads integer not null default 1,
  -- events Graph returned for the window on its latest read, and how many of them were new on that read
  events integer not null,
  new_events integer not null,
  pages integer not null,
  -- who read it: the tail cycle, a sweep, or a backfill
  reader text not null,
  primary key (tenant_id, stream, window_from, window_to),
  check (window_from <= window_to)
);
create index coverage_tenant_stream_to_idx on coverage (tenant_id, stream, window_to desc);

-- Down Migration
drop table if exists coverage;
