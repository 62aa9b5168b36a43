#!/usr/bin/env bash
# Starts a private PostgreSQL server for the tests: a new cluster in a temporary directory, listening only
# on a Unix socket there, trust authentication for the role "slimmail". Prints the Npgsql connection
# string on stdout. Stop it with: postgres.sh stop DIR
set -euo pipefail

if [ "${1:-}" = stop ]; then
  dir=$2
  bin=$(cat "$dir/bin")
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  else "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true; fi
  rm -rf "$dir"
  exit 0
fi

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  echo "PostgreSQL server binaries not found (Debian: apt-get install postgresql)" >&2
  exit 1
fi

dir=$(mktemp -d /tmp/slimmail-pg.XXXXXX)
chmod 755 "$dir"
echo "$bin" > "$dir/bin"
run() {
  # initdb and postgres refuse to run as root.
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
[ "$(id -u)" = 0 ] && chown postgres "$dir"
run "$bin/initdb" -D "$dir/data" -A trust -U slimmail -E UTF8 --no-sync >/dev/null
run "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 \
  -o "-c listen_addresses='' -c unix_socket_directories='$dir' -c fsync=off -c max_connections=200" start >/dev/null
echo "Host=$dir;Username=slimmail;Database=postgres"
