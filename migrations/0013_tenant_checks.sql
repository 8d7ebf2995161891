-- Up Migration
-- The latest preflight (`check`) per tenant: each item's outcome and fix, shown by `status`.
create table tenant_checks (
  tenant_id text primary key,
  checked_at timestamptz not null,
  ok boolean not null,
  results jsonb not null
);

-- Down Migration
drop table if exists tenant_checks;
