#!/usr/bin/env bash
# Throwaway PostgreSQL clusters for the tests. Never touches a system service.
#
#   pg.sh start DIR          create a cluster in DIR (must not exist or be empty),
#                            start it on 127.0.0.1 on a free port, create the
#                            database "kizuna" and print its URL on one line:
#                            postgres://kizuna:kizuna@127.0.0.1:PORT/kizuna
#   pg.sh stop DIR           stop the cluster by the PID in DIR/data/postmaster.pid
#                            (SIGINT = fast shutdown, SIGKILL after 10 s), remove DIR
#   pg.sh createdb URL NAME  create database NAME in the cluster at URL, print its URL
#
# Run as root (CI), the server runs as the "postgres" system user (PostgreSQL
# refuses to run as root), so DIR must be reachable by that user: put it under
# /tmp rather than under /root. Run as a normal user, everything runs as that
# user. Only the URL goes to stdout; diagnostics go to stderr and DIR/*.log.
set -euo pipefail

die() {
    echo "pg.sh: $*" >&2
    exit 1
}

# Directory holding initdb/pg_ctl: Debian's PostgreSQL 15 first, then whatever
# pg_config reports, then the newest /usr/lib/postgresql/*/bin.
find_bindir() {
    local d
    if [[ -x /usr/lib/postgresql/15/bin/initdb ]]; then
        echo /usr/lib/postgresql/15/bin
        return
    fi
    if command -v pg_config >/dev/null 2>&1; then
        d=$(pg_config --bindir 2>/dev/null || true)
        if [[ -n "$d" && -x "$d/initdb" ]]; then
            echo "$d"
            return
        fi
    fi
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    [[ -n "$d" && -x "$d/initdb" ]] || die "no PostgreSQL server binaries found (initdb)"
    echo "$d"
}

# Runs a command as the cluster owner: "postgres" when we are root, else ourselves.
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# True when something listens on 127.0.0.1:$1 (or on all addresses).
port_busy() {
    local port=$1
    if command -v ss >/dev/null 2>&1; then
        ss -Hltn 2>/dev/null | awk '{print $4}' | grep -Eq "[:.]${port}\$"
    else
        (exec 3<>"/dev/tcp/127.0.0.1/${port}") 2>/dev/null
    fi
}

# Prints a TCP port in 20000..59999 that nothing listens on right now.
pick_port() {
    local port i
    for ((i = 0; i < 200; i++)); do
        port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        if ! port_busy "$port"; then
            echo "$port"
            return
        fi
    done
    die "no free TCP port found"
}

# Splits a postgres:// URL into URL_USER URL_PASS URL_HOST URL_PORT URL_DB URL_QUERY.
parse_url() {
    local re='^postgres(ql)?://(([^:@/]*)(:([^@/]*))?@)?([^:/?]*)(:([0-9]+))?(/([^?]*))?(\?(.*))?$'
    [[ "$1" =~ $re ]] || die "not a postgres URL: $1"
    URL_USER=${BASH_REMATCH[3]:-kizuna}
    URL_PASS=${BASH_REMATCH[5]:-}
    URL_HOST=${BASH_REMATCH[6]:-127.0.0.1}
    URL_PORT=${BASH_REMATCH[8]:-5432}
    URL_DB=${BASH_REMATCH[10]:-}
    URL_QUERY=${BASH_REMATCH[12]:-}
}

cmd_start() {
    local dir=$1 bindir port attempt
    bindir=$(find_bindir)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [[ -z "$(ls -A "$dir")" ]] || die "$dir is not empty"
    # The server's Unix socket lives in DIR; sun_path holds at most 107 bytes.
    ((${#dir} < 80)) || die "$dir is too long for a socket directory; use a shorter path"
    if [[ $(id -u) -eq 0 ]]; then
        id postgres >/dev/null 2>&1 || die "running as root but there is no 'postgres' user"
        chown postgres: "$dir"
        runuser -u postgres -- test -w "$dir" ||
            die "user 'postgres' cannot write $dir (a parent directory is private); use a directory under /tmp"
    fi

    # The bootstrap superuser is "kizuna" (password "kizuna"); local
    # connections are trusted, so the password only matters to clients that
    # insist on sending one.
    echo kizuna >"$dir/pwfile"
    [[ $(id -u) -ne 0 ]] || chown postgres: "$dir/pwfile"
    if ! as_owner "$bindir/initdb" -D "$dir/data" -U kizuna --pwfile="$dir/pwfile" -A trust \
        -E UTF8 --locale=C -N >"$dir/initdb.log" 2>&1; then
        cat "$dir/initdb.log" >&2
        die "initdb failed"
    fi
    rm -f "$dir/pwfile"

    # A port that looked free can be taken before the server binds it: retry.
    for attempt in 1 2 3 4 5; do
        port=$(pick_port)
        if as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 \
            -o "-h 127.0.0.1 -p $port -k $dir -c fsync=${KZ_PG_FSYNC:-off} -c max_connections=200" \
            start >/dev/null 2>>"$dir/pg_ctl.log"; then
            break
        fi
        port=
        if [[ -f "$dir/data/postmaster.pid" ]]; then
            tail -n 20 "$dir/log" >&2 || true
            die "postgres did not start (see $dir/log)"
        fi
    done
    [[ -n "$port" ]] || {
        tail -n 20 "$dir/log" >&2 || true
        die "postgres did not start (see $dir/log)"
    }

    PGPASSWORD=kizuna "$bindir/createdb" -h 127.0.0.1 -p "$port" -U kizuna kizuna >&2 ||
        die "createdb kizuna failed"
    echo "postgres://kizuna:kizuna@127.0.0.1:${port}/kizuna"
}

cmd_stop() {
    local dir=$1 pid i
    [[ -d "$dir" ]] || return 0
    if [[ -f "$dir/data/postmaster.pid" ]]; then
        pid=$(head -n 1 "$dir/data/postmaster.pid")
        if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
            kill -INT "$pid" 2>/dev/null || true # fast shutdown
            for ((i = 0; i < 100; i++)); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            if kill -0 "$pid" 2>/dev/null; then
                echo "pg.sh: postgres $pid did not stop in 10 s, killing it" >&2
                kill -KILL "$pid" 2>/dev/null || true
                for ((i = 0; i < 50; i++)); do
                    kill -0 "$pid" 2>/dev/null || break
                    sleep 0.1
                done
            fi
        fi
    fi
    rm -rf "$dir"
}

cmd_createdb() {
    local url=$1 name=$2
    [[ "$name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "bad database name: $name"
    parse_url "$url"
    # The client from postgresql-client on PATH, else the one next to initdb.
    local client
    client=$(command -v createdb 2>/dev/null || echo "$(find_bindir)/createdb")
    PGPASSWORD=$URL_PASS "$client" -h "$URL_HOST" -p "$URL_PORT" -U "$URL_USER" "$name" >&2 ||
        die "createdb $name failed"
    local auth=$URL_USER
    [[ -z "$URL_PASS" ]] || auth="$URL_USER:$URL_PASS"
    echo "postgres://${auth}@${URL_HOST}:${URL_PORT}/${name}${URL_QUERY:+?$URL_QUERY}"
}

case "${1:-}" in
start)
    [[ $# -eq 2 ]] || die "usage: pg.sh start DIR"
    cmd_start "$2"
    ;;
stop)
    [[ $# -eq 2 ]] || die "usage: pg.sh stop DIR"
    cmd_stop "$2"
    ;;
createdb)
    [[ $# -eq 3 ]] || die "usage: pg.sh createdb URL NAME"
    cmd_createdb "$2" "$3"
    ;;
*)
    die "usage: pg.sh start DIR | stop DIR | createdb URL NAME"
    ;;
esac
