#!/usr/bin/env bash
# Scale: TOTAL client connections (mostly idle) and ACTIVE of them running SELECT 1,
# multiplexed onto POOL server connections, against switchyard and PgBouncer (transaction
# mode, same pool) in the same run. Prints per-connection memory, connection setup rate
# and query latency percentiles for both. Both accept loopback clients without a password
# here (trust), so the figures are about connections, not password hashing.
#
#   bash bench/connections.sh                  # 10000 connections, 1000 active, pool 20
#   TOTAL=2000 ACTIVE=200 bash bench/connections.sh
source "$(dirname "$0")/lib.sh"
TOTAL=${TOTAL:-10000}
ACTIVE=${ACTIVE:-1000}
POOL=${POOL:-20}
SECS=${SECS:-10}
ulimit -n "$(ulimit -Hn)"
[ -x "$ROOT/target/release/switchyard" ] || (cd "$ROOT" && cargo build --release --quiet)

start_pg main
SY_USERS=none SY_PROXY_EXTRA="max_client_connections = $((TOTAL + 100))" \
    start_switchyard "postgres://app:secret@127.0.0.1:$PG_PORT/app?sslmode=disable" "$POOL" 'pooler = "none"'
SY_PID=${PIDS[-1]}
BOUNCER_AUTH=trust start_bouncer "$PG_PORT" transaction "$POOL"

echo "connections: $TOTAL open, $ACTIVE running SELECT 1 for ${SECS}s, pool $POOL ($(nproc) cores)"
for target in switchyard pgbouncer; do
    if [ $target = switchyard ]; then port=$SY_PORT pid=$SY_PID; else port=$BOUNCER_PORT pid=$BOUNCER_PID; fi
    printf '%-11s ' "$target"
    python3 "$ROOT/bench/conn_storm.py" "$port" "$pid" "$TOTAL" "$ACTIVE" "$SECS" | tee "$BENCH_DIR/$target.out" || echo "failed"
done
field() { tr ' ' '\n' < "$BENCH_DIR/$1.out" | awk -F= -v k="$2" '$1 == k { print $2 }'; }
awk -v ss="$(field switchyard setup_per_s)" -v bs="$(field pgbouncer setup_per_s)" \
    -v sq="$(field switchyard qps)" -v bq="$(field pgbouncer qps)" \
    -v sp="$(field switchyard p99_ms)" -v bp="$(field pgbouncer p99_ms)" 'BEGIN {
  if (bs > 0 && bq > 0 && bp > 0)
    printf "ratios switchyard/pgbouncer: setup rate %.2f, qps %.2f, p99 latency %.2f\n", ss / bs, sq / bq, sp / bp
}'
