#!/bin/sh
# Runs once, when the postgres container initialises an empty data directory (/docker-entrypoint-initdb.d), as the
# image's superuser. Creates the daemon's own login `signin_ingest` (no SUPERUSER, no CREATEDB, no CREATEROLE) and
# makes it the owner of the database (docs/access.md), the read-only group role signin_reader (the daemon's migration
# grants it SELECT) and the login `grafana` in it. Passwords come from the `secrets` service (ops/compose/secrets.sh),
# so Grafana's data source and the daemon use the same ones.
set -eu
secrets="${SECRETS_DIR:-/run/signin-secrets}/postgres"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v db="$POSTGRES_DB" \
  -v ingest="$(cat "$secrets/ingest-db-password")" \
  -v grafana="$(cat "$secrets/grafana-db-password")" <<'SQL'
select format('create role signin_ingest login password %L nosuperuser nocreatedb nocreaterole', :'ingest')
where not exists (select 1 from pg_roles where rolname = 'signin_ingest') \gexec
alter database :"db" owner to signin_ingest;
select 'create role signin_reader nologin'
where not exists (select 1 from pg_roles where rolname = 'signin_reader') \gexec
select format('create role grafana login password %L in role signin_reader connection limit 10', :'grafana')
where not exists (select 1 from pg_roles where rolname = 'grafana') \gexec
-- A dashboard's runaway query must not hold the daemon up.
alter role grafana set statement_timeout = '60s';
SQL
