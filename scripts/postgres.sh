#!/usr/bin/env bash
# A throw-away local PostgreSQL, for trying durable on PostgreSQL and for the tests:
#
#   scripts/postgres.sh start   # initdb under target/postgres (once), then start it
#   scripts/postgres.sh url     # the URL of its `durable` database, for --store
#   scripts/postgres.sh restart # pg_ctl restart -m immediate: a crash and recovery, for tests
#   scripts/postgres.sh stop
#   scripts/postgres.sh status
#
# It listens on 127.0.0.1 only, on DURABLE_PG_PORT (default 55432), with trust
# authentication for the `durable` role: a local sandbox, never a server to expose. Its
# files live in DURABLE_PG_DIR (default target/postgres), so a second server (another port,
# another directory) can run beside the first, e.g. for a test that restarts its server.
# Debian's `postgresql` package is installed when missing (as root, through apt). PostgreSQL
# refuses to run as root, so under root the server runs as the package's `postgres` user,
# which then owns target/postgres.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

dir="${DURABLE_PG_DIR:-$PWD/target/postgres}"
if [[ "$dir" != /* ]]; then
    dir="$PWD/$dir"
fi
data="$dir/data"
port="${DURABLE_PG_PORT:-55432}"

pg_bin() {
    local initdb
    initdb="$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1)"
    [[ -n "$initdb" ]] && dirname "$initdb"
}

install_if_missing() {
    if [[ -n "$(pg_bin)" ]]; then
        return
    fi
    if [[ "$(id -u)" -ne 0 ]]; then
        echo "postgres.sh: PostgreSQL is not installed; run as root once, or: sudo apt-get install postgresql" >&2
        exit 1
    fi
    echo "postgres.sh: apt-get install postgresql" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
}

# Runs a PostgreSQL program as the user that owns the cluster.
as_owner() {
    if [[ "$(id -u)" -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

running() {
    [[ -f "$data/postmaster.pid" ]] && as_owner "$(pg_bin)/pg_ctl" -D "$data" status >/dev/null 2>&1
}

start() {
    install_if_missing
    local bin
    bin="$(pg_bin)"
    mkdir -p "$dir"
    if [[ "$(id -u)" -eq 0 ]]; then
        chown postgres: "$dir"
        # The server's user must be able to reach its directory.
        local parent="$dir"
        while parent="$(dirname "$parent")" && [[ "$parent" != / ]]; do
            chmod o+x "$parent"
        done
    fi
    if [[ ! -f "$data/PG_VERSION" ]]; then
        as_owner "$bin/initdb" -D "$data" -U durable --auth=trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 || {
            cat "$dir/initdb.log" >&2
            exit 1
        }
    fi
    if ! running; then
        as_owner "$bin/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 start \
            -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c synchronous_commit=on -c fsync=on" >/dev/null || {
            tail -n 20 "$dir/server.log" >&2
            exit 1
        }
    fi
    if ! as_owner "$bin/psql" -h 127.0.0.1 -p "$port" -U durable -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = 'durable'" | grep -q 1; then
        as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U durable durable
    fi
    echo "postgres.sh: running on 127.0.0.1:$port ($data)" >&2
}

stop() {
    if [[ -n "$(pg_bin)" ]] && running; then
        as_owner "$(pg_bin)/pg_ctl" -D "$data" -m fast -w stop >/dev/null
        echo "postgres.sh: stopped" >&2
    fi
}

# An immediate restart: the server is killed without a checkpoint and recovers from its WAL,
# as after a crash; clients lose their connections. It keeps the options it was started with.
restart() {
    if ! running; then
        echo "postgres.sh: not running ($data); use start" >&2
        exit 1
    fi
    as_owner "$(pg_bin)/pg_ctl" -D "$data" -l "$dir/server.log" -m immediate -w -t 60 restart >/dev/null || {
        tail -n 20 "$dir/server.log" >&2
        exit 1
    }
    echo "postgres.sh: restarted ($data)" >&2
}

case "${1:-}" in
start)
    start
    echo "postgres://durable@127.0.0.1:$port/durable"
    ;;
stop) stop ;;
restart) restart ;;
url) echo "postgres://durable@127.0.0.1:$port/durable" ;;
status)
    if [[ -n "$(pg_bin)" ]] && running; then
        echo "running on 127.0.0.1:$port"
    else
        echo "stopped"
        exit 3
    fi
    ;;
*)
    echo "usage: scripts/postgres.sh start|stop|restart|url|status" >&2
    exit 2
    ;;
esac
