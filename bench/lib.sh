#!/usr/bin/env bash
# Shared helpers for the benchmarks: throwaway PostgreSQL, PgBouncer and switchyard
# processes on free ports, all stopped on exit. Sourced, not run.
set -euo pipefail

BENCH_DIR=$(mktemp -d /tmp/switchyard-bench.XXXXXX)
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PIDS=()

as_server_user() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

cleanup() {
    # KEEP_LOGS=DIR keeps switchyard's logs (e.g. with SY_LOG=switchyard=debug).
    if [ -n "${KEEP_LOGS:-}" ]; then mkdir -p "$KEEP_LOGS"; cp "$BENCH_DIR"/*.log "$KEEP_LOGS"/ 2>/dev/null || true; fi
    for pid in "${PIDS[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done
    for f in "$BENCH_DIR"/bouncer-*/pgbouncer.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
    for d in "$BENCH_DIR"/pg*; do
        [ -d "$d/data" ] && as_server_user "$PG_BIN/pg_ctl" -D "$d/data" -m immediate stop >/dev/null 2>&1 || true
    done
    rm -rf "$BENCH_DIR"
}
trap cleanup EXIT

# start_pg NAME -> sets PG_PORT; a cluster with role app/secret and database app.
start_pg() {
    local dir="$BENCH_DIR/pg-$1"
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$BENCH_DIR" "$dir"
    as_server_user "$PG_BIN/initdb" -D "$dir/data" -U postgres -A trust --no-sync -E UTF8 --locale=C >/dev/null
    printf 'local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n' > "$dir/data/pg_hba.conf"
    PG_PORT=$(free_port)
    as_server_user "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/log" -w -o \
        "-p $PG_PORT -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off -c synchronous_commit=off -c shared_buffers=128MB" \
        start >/dev/null
    as_server_user psql -X -q -h "$dir" -p "$PG_PORT" -U postgres -d postgres \
        -c "CREATE ROLE app LOGIN SUPERUSER PASSWORD 'secret'" -c "CREATE DATABASE app OWNER app" >/dev/null
    PG_SOCK="$dir"
}

# start_bouncer PG_PORT MODE POOL -> sets BOUNCER_PORT
start_bouncer() {
    local dir="$BENCH_DIR/bouncer-$2"
    mkdir -p "$dir"
    BOUNCER_PORT=$(free_port)
    printf '"app" "secret"\n' > "$dir/users.txt"
    cat > "$dir/pgbouncer.ini" <<INI
[databases]
* = host=127.0.0.1 port=$1
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCER_PORT
unix_socket_dir = $dir
auth_type = ${BOUNCER_AUTH:-plain}
auth_file = $dir/users.txt
pool_mode = $2
default_pool_size = $3
max_client_conn = 20000
listen_backlog = 4096
ignore_startup_parameters = extra_float_digits,options
${BOUNCER_EXTRA:-}
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
    [ "$(id -u)" = 0 ] && chown -R postgres "$dir"
    # runuser's login limits leave 1024 open files; raise to the hard limit first.
    as_server_user bash -c 'ulimit -n "$(ulimit -Hn)"; exec pgbouncer -d "$1"' _ "$dir/pgbouncer.ini" >/dev/null 2>&1
    wait_port "$BOUNCER_PORT"
    BOUNCER_PID=$(cat "$dir/pgbouncer.pid")
}

# start_switchyard BACKEND_URL POOL [EXTRA_BACKEND_TOML] -> sets SY_PORT
start_switchyard() {
    SY_PORT=$(free_port)
    local admin
    admin=$(free_port)
    SY_ADMIN_PORT=$admin
    local cfg="$BENCH_DIR/switchyard-$SY_PORT.toml"
    cat > "$cfg" <<TOML
[proxy]
listen = "127.0.0.1:$SY_PORT"
${SY_PROXY_EXTRA:-}
[admin]
listen = "127.0.0.1:$admin"
$([ "${SY_USERS:-}" = none ] || printf '[[users]]\nname = "app"\npassword = "secret"')
[backends.main]
url = "$1"
pool_size = $2
${3:-}
TOML
    # In a session of its own, as PgBouncer (-d) and PostgreSQL are: with the kernel's
    # autogroup scheduling each session shares CPU as one group, and a proxy left in the
    # load generator's session was scheduled differently from PgBouncer (measured: 1.04-1.13x
    # PgBouncer there, 0.90-0.95x in a session of its own, same binary).
    RUST_LOG=${SY_LOG:-warn} setsid "${SY_BIN:-$ROOT/target/release/switchyard}" serve --config "$cfg" >"$BENCH_DIR/switchyard-$SY_PORT.log" 2>&1 &
    SY_PID=$!
    PIDS+=("$SY_PID")
    wait_port "$SY_PORT"
}

wait_port() {
    for _ in $(seq 1 100); do
        (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on port $1" >&2
    return 1
}

# pgbench_tps PORT ARGS... -> prints "tps latency_ms failed"
pgbench_run() {
    local port=$1
    shift
    local out
    out=$(PGPASSWORD=secret "$PG_BIN/pgbench" -h 127.0.0.1 -p "$port" -U app "$@" "${PGB_DB:-app}" 2>&1) || { echo "0 0 error"; echo "$out" >&2; return 0; }
    local tps lat failed
    tps=$(echo "$out" | awk '/^tps = /{print $3}')
    lat=$(echo "$out" | awk '/^latency average/{print $4}')
    failed=$(echo "$out" | awk '/number of failed transactions/{print $5}')
    echo "${tps:-0} ${lat:-0} ${failed:-0}"
}

# cpu_ticks PID -> user and system CPU of a process so far, in clock ticks (1/100 s).
cpu_ticks() {
    if [ -n "${1:-}" ] && [ -r "/proc/$1/stat" ]; then awk '{print $14, $15}' "/proc/$1/stat"; else echo "0 0"; fi
}

median() {
    sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'
}

# pgbench_init_keyed PORT SCALE: pgbench's tables at SCALE, with the primary key on
# pgbench_history that live sync needs (pgbench makes it without one).
pgbench_init_keyed() {
    PGPASSWORD=secret "$PG_BIN/pgbench" -h 127.0.0.1 -p "$1" -U app -i -s "$2" -q app >/dev/null 2>&1
    PGPASSWORD=secret psql -X -q -h 127.0.0.1 -p "$1" -U app -d app \
        -c "ALTER TABLE pgbench_history ADD COLUMN id bigserial PRIMARY KEY" >/dev/null
}
