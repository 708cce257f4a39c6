#!/bin/sh
# Starts Postgres. On an empty data directory first: initdb with the superuser's password
# read from POSTGRES_PASSWORD_FILE (never from the env or a command line), password
# (scram-sha-256) logins from the network, trust only on the local socket (which sits in
# the container's own /var/run/postgresql), then every /docker-entrypoint-initdb.d/*.sh and
# *.sql against a server listening on the socket alone, stopped again before the real start.
set -eu
: "${PGDATA:?PGDATA is required}"
user="${POSTGRES_USER:-postgres}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile="${POSTGRES_PASSWORD_FILE:?POSTGRES_PASSWORD_FILE is required on a new data directory}"
  [ -r "$pwfile" ] || { echo "postgres-entrypoint: cannot read POSTGRES_PASSWORD_FILE $pwfile" >&2; exit 1; }
  initdb --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 -D "$PGDATA" >/dev/null
  printf "listen_addresses = '*'\npassword_encryption = 'scram-sha-256'\n" >>"$PGDATA/postgresql.conf"
  printf 'host all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w -t 60 start >/dev/null
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh) echo "postgres-entrypoint: running $f"; sh "$f" ;;
      *.sql) echo "postgres-entrypoint: running $f"; psql -v ON_ERROR_STOP=1 --username "$user" -f "$f" ;;
      *) ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w -t 60 stop >/dev/null
  echo "postgres-entrypoint: new data directory ready"
fi
exec "$@"
