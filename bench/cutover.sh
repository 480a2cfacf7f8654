#!/usr/bin/env bash
# Switch pauses under load: pgbench (TPC-B-like, 16 clients) through switchyard with two
# PostgreSQL backends while the script switches back and forth SWITCHES times. Prints the
# pause distribution (p50/p99/max, from the admin API's answers), the TPS dip in the
# seconds with a switch against the median second, and pgbench's failed transactions.
#
#   bash bench/cutover.sh                  # 16 clients, 20 switches
#   CLIENTS=32 SWITCHES=50 MODE=prepared bash bench/cutover.sh
source "$(dirname "$0")/lib.sh"

CLIENTS=${CLIENTS:-16}
SWITCHES=${SWITCHES:-20}
MODE=${MODE:-extended}
INTERVAL=${INTERVAL:-1}
SY="$ROOT/target/release/switchyard"

(cd "$ROOT" && cargo build --release --quiet)
start_pg a; PORT_A=$PG_PORT
start_pg b; PORT_B=$PG_PORT
for p in $PORT_A $PORT_B; do
    PGPASSWORD=secret "$PG_BIN/pgbench" -h 127.0.0.1 -p "$p" -U app -i -s 10 -q app >/dev/null 2>&1
done
start_switchyard "postgres://app:secret@127.0.0.1:$PORT_A/app?sslmode=disable" 24 \
"pooler = \"none\"
[backends.b]
url = \"postgres://app:secret@127.0.0.1:$PORT_B/app?sslmode=disable\"
pool_size = 24
pooler = \"none\"
[routing]
active = \"main\""
ADMIN="http://127.0.0.1:$SY_ADMIN_PORT"

DURATION=$(( SWITCHES * INTERVAL + 6 ))
PGPASSWORD=secret "$PG_BIN/pgbench" -h 127.0.0.1 -p "$SY_PORT" -U app -c "$CLIENTS" -j 4 -T "$DURATION" -M "$MODE" -P 1 app \
    >"$BENCH_DIR/pgbench.out" 2>"$BENCH_DIR/pgbench.progress" &
BENCH_PID=$!
START=$(date +%s%N)
sleep 3
: > "$BENCH_DIR/pauses"
: > "$BENCH_DIR/switch-seconds"
for i in $(seq 1 "$SWITCHES"); do
    if (( i % 2 )); then target=b; else target=main; fi
    at=$(( ($(date +%s%N) - START) / 1000000000 ))
    out=$("$SY" ctl --admin "$ADMIN" --json cutover "$target" 2>/dev/null || true)
    pause=$(echo "$out" | awk -F': ' '/"pause_ms"/{gsub(",","",$2); print $2}')
    ok=$(echo "$out" | awk -F': ' '/"ok"/{gsub(",","",$2); print $2}')
    [ "$ok" = true ] || echo "switch $i failed: $out" >&2
    echo "${pause:-0}" >> "$BENCH_DIR/pauses"
    echo "$at" >> "$BENCH_DIR/switch-seconds"
    sleep "$INTERVAL"
done
wait $BENCH_PID || true

sort -g "$BENCH_DIR/pauses" > "$BENCH_DIR/pauses.sorted"
n=$(wc -l < "$BENCH_DIR/pauses.sorted")
pct() { awk -v p="$1" -v n="$n" 'NR == int((n - 1) * p + 1) {print; exit}' "$BENCH_DIR/pauses.sorted"; }
failed=$(awk '/number of failed transactions/{print $5}' "$BENCH_DIR/pgbench.out")
tps=$(awk '/^tps = /{print $3}' "$BENCH_DIR/pgbench.out")
# Per-second progress lines: "progress: 5.0 s, 12345.6 tps, lat ..."
awk '/^progress:/{sec=int($2); t=$4; print sec, t}' "$BENCH_DIR/pgbench.progress" > "$BENCH_DIR/per-second"
median_tps=$(awk '{print $2}' "$BENCH_DIR/per-second" | median)
switch_tps=$(awk 'NR==FNR {s[$1+1]=1; next} ($1 in s) {print $2}' "$BENCH_DIR/switch-seconds" "$BENCH_DIR/per-second" | median)
worst_tps=$(awk 'NR==FNR {s[$1+1]=1; next} ($1 in s) {print $2}' "$BENCH_DIR/switch-seconds" "$BENCH_DIR/per-second" | sort -g | head -1)

echo "cutover benchmark: $CLIENTS clients, -M $MODE, $n switches every ${INTERVAL}s ($(nproc) cores)"
echo "  pause ms: p50 $(pct 0.5)  p99 $(pct 0.99)  max $(tail -1 "$BENCH_DIR/pauses.sorted")"
echo "  tps: overall $tps, median second $median_tps, median second with a switch $switch_tps, worst switch second $worst_tps"
awk -v m="$median_tps" -v s="$switch_tps" 'BEGIN { if (m > 0) printf "  tps dip in switch seconds: %.1f%%\n", (1 - s / m) * 100 }'
echo "  pgbench failed transactions: ${failed:-unknown}"
