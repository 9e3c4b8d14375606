#!/usr/bin/env bash
# A throw-away PostgreSQL cluster for the key-store tests.
#
#   scripts/pg_test_cluster.sh start DIR   # install PostgreSQL if absent, start, print the DSN
#   scripts/pg_test_cluster.sh stop DIR
#
# The cluster lives in DIR/data, listens on 127.0.0.1 only (trust auth: loopback only, tests
# only), keeps its unix socket in DIR/sock and its log in DIR/log. The DSN
# postgresql://postgres@127.0.0.1:PORT/postgres is written to DIR/dsn. `start` is idempotent.
# fsync is off: the cluster is for tests and is recreated at will; it is never production.
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1
mkdir -p "$2"
dir=$(cd "$2" && pwd)
# The cluster's files live in DIR unless the postgres user cannot reach it (a checkout under
# /root, mode 700): then in a directory of its own under /tmp, named after DIR. The DSN file
# is always DIR/dsn.
home=$dir
if [ "$(id -u)" -eq 0 ] && id postgres >/dev/null 2>&1 \
        && ! runuser -u postgres -- test -x "$(dirname "$dir")" 2>/dev/null; then
    home=/tmp/qnetkit-pgtest-$(printf %s "$dir" | md5sum | cut -c1-12)
    mkdir -p "$home"
fi
data=$home/data

find_bindir() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -z "$d" ] && command -v pg_config >/dev/null 2>&1; then
        d=$(pg_config --bindir)
    fi
    [ -n "$d" ] && [ -x "$d/initdb" ] && echo "$d"
}

# PostgreSQL refuses to run as root: as root, run it as the unprivileged `postgres` user.
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

running() {
    [ -f "$data/postmaster.pid" ] && as_pg "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1
}

bindir=$(find_bindir || true)

case $cmd in
start)
    if [ -z "$bindir" ]; then
        if [ "$(id -u)" -ne 0 ]; then
            echo "PostgreSQL is not installed and installing it needs root" >&2
            exit 1
        fi
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql
        bindir=$(find_bindir) || { echo "PostgreSQL binaries not found after install" >&2; exit 1; }
    fi
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || { echo "no 'postgres' system user" >&2; exit 1; }
        chown postgres: "$home"
    fi
    chmod 700 "$home"
    if ! as_pg test -w "$home"; then
        echo "$home is not reachable by the postgres user (check the parent directories)" >&2
        exit 1
    fi
    if running && [ -s "$dir/dsn" ]; then
        cat "$dir/dsn"
        exit 0
    fi
    if [ ! -f "$data/PG_VERSION" ]; then
        rm -rf "$data"
        as_pg "$bindir/initdb" -D "$data" -U postgres --auth-local=trust --auth-host=trust \
            -E UTF8 --locale=C --no-sync >"$home/initdb.log" 2>&1 \
            || { cat "$home/initdb.log" >&2; exit 1; }
    fi
    as_pg mkdir -p "$home/sock"
    started=
    for _ in 1 2 3 4 5; do  # another process may take the free port before we bind it
        port=$(free_port)
        if as_pg "$bindir/pg_ctl" -D "$data" -l "$home/log" -w -t 60 start -o \
            "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$home/sock -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
            >/dev/null; then
            started=1
            break
        fi
    done
    if [ -z "$started" ]; then
        echo "PostgreSQL did not start; its log:" >&2
        tail -n 30 "$home/log" >&2 || true
        exit 1
    fi
    dsn="postgresql://postgres@127.0.0.1:$port/postgres"
    echo "$dsn" >"$dir/dsn.tmp"
    mv "$dir/dsn.tmp" "$dir/dsn"
    echo "$dsn"
    ;;
stop)
    if [ -n "$bindir" ] && running; then
        as_pg "$bindir/pg_ctl" -D "$data" -m fast -w stop >/dev/null
    fi
    rm -f "$dir/dsn"
    ;;
*)
    usage
    ;;
esac
