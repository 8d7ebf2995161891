-- Up Migration
-- Directory audit logs (/auditLogs/directoryAudits, time field activityDateTime), with the same guarantees as sign-ins:
-- raw jsonb as received, typed columns generated from it, upsert by (tenant_id, id), checkpoint per (tenant, stream).
create table directory_audits (
  tenant_id text not null,
  id text not null,
  activity_date_time timestamptz not null,
  stream text not null,
  raw jsonb not null,
  first_seen_at timestamptz not null,
  last_changed_at timestamptz not null,
  revision integer not null default 1,
  category text generated always as (signin_text(raw -> 'category')) stored,
  activity_display_name text generated always as (signin_text(raw -> 'activityDisplayName')) stored,
  operation_type text generated always as (signin_text(raw -> 'operationType')) stored,
  result text generated always as (signin_text(raw -> 'result')) stored,
  result_reason text generated always as (signin_text(raw -> 'resultReason')) stored,
  logged_by_service text generated always as (signin_text(raw -> 'loggedByService')) stored,
  correlation_id text generated always as (signin_text(raw -> 'correlationId')) stored,
  initiated_by_user_principal_name text
    generated always as (signin_text(raw -> 'initiatedBy' -> 'user' -> 'userPrincipalName')) stored,
  initiated_by_user_id text generated always as (signin_text(raw -> 'initiatedBy' -> 'user' -> 'id')) stored,
  initiated_by_ip_address text generated always as (signin_text(raw -> 'initiatedBy' -> 'user' -> 'ipAddress')) stored,
  initiated_by_app_display_name text
    generated always as (signin_text(raw -> 'initiatedBy' -> 'app' -> 'displayName')) stored,
  initiated_by_app_id text generated always as (signin_text(raw -> 'initiatedBy' -> 'app' -> 'appId')) stored,
  primary key (tenant_id, id)
);
create index directory_audits_tenant_time_idx on directory_audits (tenant_id, activity_date_time desc);

-- Down Migration
drop table if exists directory_audits;
