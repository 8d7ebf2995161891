#!/bin/sh
# Runs once, when the postgres container initialises an empty data directory (/docker-entrypoint-initdb.d):
# creates the read-only group role signin_reader (the daemon's migration grants it SELECT) and the login `grafana`
# in it, with the password from GRAFANA_DB_PASSWORD (default "grafana"; change it for anything but a laptop).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v password="${GRAFANA_DB_PASSWORD:-grafana}" <<'SQL'
select 'create role signin_reader nologin'
where not exists (select 1 from pg_roles where rolname = 'signin_reader') \gexec
select format('create role grafana login password %L in role signin_reader', :'password')
where not exists (select 1 from pg_roles where rolname = 'grafana') \gexec
SQL
