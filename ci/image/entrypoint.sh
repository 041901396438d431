#!/bin/sh
# pgdrill image entrypoint: initialise a cluster on first start, then run the server in the
# foreground as PID 1's child-free replacement (exec), so `docker stop` reaches postgres directly.
#
# Contract (the same as the official postgres image, so both builds are interchangeable):
#   POSTGRES_PASSWORD  password of the superuser (required)
#   POSTGRES_USER      superuser name (default: postgres)
#   PGDATA             data directory (default: /var/lib/postgresql/data)
#   arguments          `postgres -c name=value ...` (a leading `postgres` is optional)
set -eu

PGBIN=/usr/lib/postgresql/17/bin
export PGDATA="${PGDATA:-/var/lib/postgresql/data}"

if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown -R postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ "${1:-}" = postgres ]; then
    shift
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        echo "pgdrill-entrypoint: POSTGRES_PASSWORD is required" >&2
        exit 1
    fi
    pwfile="$(mktemp)"
    printf '%s' "$POSTGRES_PASSWORD" > "$pwfile"
    "$PGBIN/initdb" --pgdata="$PGDATA" --username="${POSTGRES_USER:-postgres}" \
        --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
        --encoding=UTF8 --locale=en_US.UTF-8 --no-sync >/dev/null
    rm -f "$pwfile"
    echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    echo "pgdrill-entrypoint: initialised $PGDATA" >&2
fi
unset POSTGRES_PASSWORD

exec "$PGBIN/postgres" "$@"
