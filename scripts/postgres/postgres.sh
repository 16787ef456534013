#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for `make test-postgres`, with the machine's own server binaries.
#
#   scripts/postgres/postgres.sh start   initdb a fresh cluster, start it, print its URL on stdout
#   scripts/postgres/postgres.sh stop    stop it (fast shutdown) and delete its data; no-op when absent
#
# Environment:
#   PG_PORT (a free one)  PG_DATA_DIR (/tmp/payments-test-postgres)
#   PG_BIN (the directory holding initdb and pg_ctl; found on PATH or in /usr/lib/postgresql/*/bin)
#   PG_OPTIONS (more server options, e.g. "-c shared_preload_libraries=pg_stat_statements" for benchmarks)
#
# The cluster trusts local connections, keeps nothing on disk durably (fsync off) and listens on
# 127.0.0.1 only. initdb refuses to run as root, so as root the cluster belongs to user `postgres`
# (or `nobody`). Tests then create a fresh database per test or module in it (see
# tests/support/databases.py).
set -euo pipefail

PORT=${PG_PORT:-}
DATA_ROOT=${PG_DATA_DIR:-/tmp/payments-test-postgres}
DATA=$DATA_ROOT/data
SOCKETS=$DATA_ROOT/sockets

say() { echo "postgres.sh: $*" >&2; }
die() {
    say "$*"
    exit 1
}

find_bin() {
    if [[ -n ${PG_BIN:-} ]]; then
        echo "$PG_BIN"
    elif command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
        dirname "$(command -v pg_ctl)"
    else
        local dir
        for dir in /usr/lib/postgresql/*/bin; do
            [[ -x $dir/initdb ]] && echo "$dir" && return
        done
        die "no PostgreSQL server binaries (initdb, pg_ctl): install PostgreSQL or set PG_BIN"
    fi
}

owner() {
    if [[ $(id -u) -ne 0 ]]; then
        id -un
    elif id postgres >/dev/null 2>&1; then
        echo postgres
    else
        echo nobody
    fi
}

as_owner() {
    local user
    user=$(owner)
    if [[ $user == "$(id -un)" ]]; then
        "$@"
    else
        runuser -u "$user" -- "$@"
    fi
}

start() {
    local bin user
    bin=$(find_bin)
    user=$(owner)
    [[ -e $DATA ]] && die "$DATA exists: run '$0 stop' first"
    mkdir -p "$DATA" "$SOCKETS"
    chown -R "$user" "$DATA_ROOT"
    chmod 700 "$DATA"
    if [[ -z $PORT ]]; then
        PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    fi
    as_owner "$bin/initdb" --pgdata="$DATA" --username="$user" --auth=trust --encoding=UTF8 --no-sync >/dev/null
    as_owner "$bin/pg_ctl" --pgdata="$DATA" --log="$DATA_ROOT/server.log" --wait --silent start \
        -o "-c listen_addresses=127.0.0.1 -c port=$PORT -c unix_socket_directories=$SOCKETS -c fsync=off \
-c synchronous_commit=off -c full_page_writes=off -c max_connections=300 ${PG_OPTIONS:-}" ||
        die "the server did not start; see $DATA_ROOT/server.log"
    echo "postgresql+asyncpg://$user@127.0.0.1:$PORT/"
}

stop() {
    [[ -d $DATA_ROOT ]] || return 0
    if [[ -f $DATA/postmaster.pid ]]; then
        as_owner "$(find_bin)/pg_ctl" --pgdata="$DATA" --mode=fast --wait --silent stop || say "pg_ctl stop failed"
    fi
    rm -rf "$DATA_ROOT"
}

case ${1:-} in
start) start ;;
stop) stop ;;
*) die "usage: $0 start|stop" ;;
esac
