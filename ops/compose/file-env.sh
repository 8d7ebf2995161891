#!/bin/sh
# docker compose entrypoint of the daemon and the demo: for each VAR_FILE given (Docker secrets, the `secrets`
# volume), exports VAR with the file's content, then runs the command under tini (which forwards signals and reaps).
# The command itself is the image's, unchanged: node src/cli.ts run.
set -eu
for name in PGPASSWORD DATABASE_URL GRAFANA_DB_PASSWORD; do
  eval "file=\${${name}_FILE:-}"
  if [ -n "$file" ]; then
    value="$(cat "$file")"
    export "$name=$value"
    unset "${name}_FILE"
  fi
done
exec "${TINI:-/usr/bin/tini}" -- "$@"
