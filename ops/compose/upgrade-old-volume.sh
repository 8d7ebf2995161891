#!/bin/sh
# Once, for a `pgdata` volume made by an older docker-compose.yml, whose daemon logged in as the superuser `signin`
# (POSTGRES_USER=signin, password "signin"; Grafana as `grafana`, password "grafana"). Gives that volume what
# postgres-init/10-roles.sh gives a new one, with the passwords of the `secrets` volume (ops/compose/secrets.sh):
#   - the daemon's login signin_ingest (NOSUPERUSER NOCREATEDB NOCREATEROLE) owns the database and every object in
#     it that the old superuser owned (tables and partitions, views, functions, types, sequences), and new tables it
#     creates are readable by signin_reader, as the old superuser's were;
#   - signin_reader, and the login grafana in it (statement_timeout 60 s), with the secrets' Grafana password;
#   - the superuser `postgres` for administration, and the old superuser's well-known password replaced by the same
#     secret (postgres-password); the old superuser stays (it may be the cluster's bootstrap role, which cannot go).
# Nothing is deleted; running it again changes nothing more. Run inside the postgres container (README, Container):
#   docker compose up -d postgres
#   docker compose exec -T -u postgres -e PGUSER=signin postgres sh -s < ops/compose/upgrade-old-volume.sh
#   docker compose up -d
# Connects as libpq's environment says (PGUSER, PGHOST, PGPORT, PGPASSWORD; the container's socket by default) to the
# database PGDATABASE (default signin). Tested by test/compose-roles.test.ts.
set -eu
secrets="${SECRETS_DIR:-/run/signin-secrets}/postgres"
export PGDATABASE="${PGDATABASE:-signin}"
for file in postgres-password ingest-db-password grafana-db-password; do
  if [ ! -s "$secrets/$file" ]; then
    echo "upgrade-old-volume: $secrets/$file is missing or empty: start the secrets service first (docker compose up -d postgres)" >&2
    exit 1
  fi
done
psql -v ON_ERROR_STOP=1 -X -q \
  -v db="$PGDATABASE" \
  -v admin="$(cat "$secrets/postgres-password")" \
  -v ingest="$(cat "$secrets/ingest-db-password")" \
  -v grafana="$(cat "$secrets/grafana-db-password")" <<'SQL'
begin;
select 'create role signin_ingest' where not exists (select 1 from pg_roles where rolname = 'signin_ingest') \gexec
alter role signin_ingest login nosuperuser nocreatedb nocreaterole password :'ingest';
select 'create role postgres superuser' where not exists (select 1 from pg_roles where rolname = 'postgres') \gexec
alter role postgres login password :'admin';
alter role current_user password :'admin';
select 'create role signin_reader nologin' where not exists (select 1 from pg_roles where rolname = 'signin_reader') \gexec
select 'create role grafana' where not exists (select 1 from pg_roles where rolname = 'grafana') \gexec
alter role grafana login connection limit 10 password :'grafana';
select 'grant signin_reader to grafana' where not pg_has_role('grafana', 'signin_reader', 'member') \gexec
-- A dashboard's runaway query must not hold the daemon up.
alter role grafana set statement_timeout = '60s';

-- Ownership: the database, then every object of schema public that a superuser owns (REASSIGN OWNED cannot move the
-- bootstrap superuser's); an extension's objects stay its own. An index, a column's sequence and a table's row type follow their table.
alter database :"db" owner to signin_ingest;
do $$
declare
  r record;
begin
  for r in
    select format('alter %s %s owner to signin_ingest',
                  case c.relkind when 'v' then 'view' when 'm' then 'materialized view' when 'S' then 'sequence'
                                 when 'f' then 'foreign table' when 'c' then 'type' else 'table' end,
                  c.oid::regclass) as statement
    from pg_class c join pg_roles o on o.oid = c.relowner
    where c.relnamespace = 'public'::regnamespace and o.rolsuper and o.rolname <> 'signin_ingest'
      and c.relkind in ('r', 'p', 'v', 'm', 'S', 'f', 'c')
      and not exists (
        select 1 from pg_depend d
        where d.classid = 'pg_class'::regclass and d.objid = c.oid
          and (d.deptype = 'e' or (c.relkind = 'S' and d.deptype in ('a', 'i'))))
    union all
    select format('alter %s %s owner to signin_ingest',
                  case p.prokind when 'a' then 'aggregate' when 'p' then 'procedure' else 'function' end,
                  p.oid::regprocedure)
    from pg_proc p join pg_roles o on o.oid = p.proowner
    where p.pronamespace = 'public'::regnamespace and o.rolsuper
      and not exists (select 1 from pg_depend d where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e')
    union all
    select format('alter type %s owner to signin_ingest', t.oid::regtype)
    from pg_type t join pg_roles o on o.oid = t.typowner
    where t.typnamespace = 'public'::regnamespace and o.rolsuper and t.typtype in ('e', 'd', 'r')
  loop
    execute r.statement;
  end loop;
end
$$;
-- What the old superuser's default privileges did (migration 0002): new tables readable by signin_reader.
alter default privileges for role signin_ingest in schema public grant select on tables to signin_reader;
commit;
\t on
select format('upgraded: signin_ingest owns database %I and %s objects in it; grafana and postgres have the secrets'' passwords',
              :'db', count(*))
from pg_class where relnamespace = 'public'::regnamespace and relowner = 'signin_ingest'::regrole;
SQL
