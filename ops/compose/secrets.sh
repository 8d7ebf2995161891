#!/bin/sh
# docker compose: the one-shot `secrets` service. Writes each password once into the `secrets` volume, a folder per
# consumer that only it can read (PostgreSQL uid 999, Grafana 472, the daemon's `node` 1000): the value from the
# environment when given (.env: POSTGRES_PASSWORD, INGEST_DB_PASSWORD, GRAFANA_DB_PASSWORD, GRAFANA_ADMIN_PASSWORD),
# otherwise a random one. A value already written is kept (PostgreSQL keeps the password it was initialised with; to
# change one, see README, Container). Prints Grafana's admin password when it generates it.
set -eu
umask 077
dir="${SECRETS_DIR:-/run/signin-secrets}"
ids="${SECRETS_OWNERS:-postgres=999:999 grafana=472:0 daemon=1000:1000}"

random() { head -c 24 /dev/urandom | base64 | tr -d '/+=\n' | cut -c1-24; }

# value NAME ENV: the stored value of NAME (shared by its consumers), else $ENV, else a random one.
value() {
  if [ -s "$dir/.values/$1" ]; then
    cat "$dir/.values/$1"
    return
  fi
  eval "given=\${$2:-}"
  if [ -n "$given" ]; then printf '%s' "$given"; else random; fi
}

mkdir -p "$dir/.values"
chmod 700 "$dir/.values"
generated_admin=no
[ -s "$dir/.values/grafana-admin-password" ] || [ -n "${GRAFANA_ADMIN_PASSWORD:-}" ] || generated_admin=yes
for pair in postgres-password:POSTGRES_PASSWORD ingest-db-password:INGEST_DB_PASSWORD \
  grafana-db-password:GRAFANA_DB_PASSWORD grafana-admin-password:GRAFANA_ADMIN_PASSWORD; do
  name="${pair%%:*}"
  v="$(value "$name" "${pair#*:}")"
  printf '%s' "$v" > "$dir/.values/$name"
done

# place CONSUMER FILE NAME: a consumer's copy of a value, readable by it alone.
place() {
  owner=""
  for o in $ids; do
    if [ "${o%%=*}" = "$1" ]; then owner="${o#*=}"; fi
  done
  mkdir -p "$dir/$1"
  cp "$dir/.values/$3" "$dir/$1/$2"
  chmod 700 "$dir/$1"
  chmod 400 "$dir/$1/$2"
  if [ "$(id -u)" = 0 ]; then chown -R "$owner" "$dir/$1"; fi
}
place postgres postgres-password postgres-password
place postgres ingest-db-password ingest-db-password
place postgres grafana-db-password grafana-db-password
place grafana db-password grafana-db-password
place grafana admin-password grafana-admin-password
place daemon db-password ingest-db-password

if [ "$generated_admin" = yes ]; then
  echo "Grafana (http://127.0.0.1:3000): user admin, generated password $(cat "$dir/.values/grafana-admin-password")"
fi
echo "secrets ready in the secrets volume"
