-- Up Migration
-- Tiered re-scans ("sweeps"): for each (tenant, stream, tier) when it last ran and how many late events it rescued.
create table sweep_runs (
  tenant_id text not null,
  stream text not null,
  tier text not null,
  started_at timestamptz not null,
  finished_at timestamptz not null,
  window_from timestamptz not null,
  window_to timestamptz not null,
  pages integer not null,
  fetched integer not null,
  rescued integer not null,
  updated integer not null,
  primary key (tenant_id, stream, tier, started_at)
);

-- Down Migration
drop table if exists sweep_runs;
