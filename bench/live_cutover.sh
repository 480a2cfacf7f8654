#!/usr/bin/env bash
# Live cutover under writes: pgbench (TPC-B-like, 16 clients, every transaction writes)
# through switchyard on PostgreSQL "main" while live sync keeps an empty second
# PostgreSQL "b" in step; then cutover and rollback SWITCHES times. Prints the pause
# distribution, the changes caught up inside each pause, writes per second before live
# sync, while it streams, around the switches and after, pgbench's failed transactions
# (must be 0), and the TPC-B invariant on both sides at the end: the sums of account,
# teller and branch balances and of history deltas are equal only if no write was lost.
#
#   bash bench/live_cutover.sh                 # 16 clients, 10 switches
#   CLIENTS=32 SWITCHES=20 SCALE=10 bash bench/live_cutover.sh
source "$(dirname "$0")/lib.sh"

CLIENTS=${CLIENTS:-16}
SWITCHES=${SWITCHES:-10}
INTERVAL=${INTERVAL:-2}
SCALE=${SCALE:-5}
SY="$ROOT/target/release/switchyard"

(cd "$ROOT" && cargo build --release --quiet)
start_pg a; PORT_A=$PG_PORT
start_pg b; PORT_B=$PG_PORT
pgbench_init_keyed "$PORT_A" "$SCALE"
start_switchyard "postgres://app:secret@127.0.0.1:$PORT_A/app?sslmode=disable" 24 \
"pooler = \"none\"
[backends.b]
url = \"postgres://app:secret@127.0.0.1:$PORT_B/app?sslmode=disable\"
pool_size = 24
pooler = \"none\"
[routing]
active = \"main\"
[switch]
drain_timeout = \"10s\"
max_pause = \"15s\""
ADMIN="http://127.0.0.1:$SY_ADMIN_PORT"
status_field() {
    python3 -c "import sys, json, urllib.request; d = json.load(urllib.request.urlopen(sys.argv[1] + '/status')); print(eval('d' + sys.argv[2]))" "$ADMIN" "$1"
}

DURATION=${DURATION:-$(( 5 + 60 + SWITCHES * (INTERVAL + 1) + 15 ))}
PGPASSWORD=secret "$PG_BIN/pgbench" -h 127.0.0.1 -p "$SY_PORT" -U app -c "$CLIENTS" -j 4 -T "$DURATION" -P 1 app \
    >"$BENCH_DIR/pgbench.out" 2>"$BENCH_DIR/pgbench.progress" &
BENCH_PID=$!
START=$(date +%s%N)
now() { echo $(( ($(date +%s%N) - START) / 1000000000 )); }
sleep 5
SYNC_AT=$(now)
"$SY" ctl --admin "$ADMIN" sync main b >/dev/null
for _ in $(seq 1 300); do
    [ "$(status_field "['live_sync']['phase']")" = streaming ] && break
    sleep 0.1
done
STREAM_AT=$(now)
echo "live sync streaming after $(( STREAM_AT - SYNC_AT )) s (backfill $(status_field "['live_sync']['backfilled_rows']") rows)"
sleep 8
SWITCH_FROM=$(now)
: > "$BENCH_DIR/pauses"; : > "$BENCH_DIR/catchup"; : > "$BENCH_DIR/waits"; refused=0
for i in $(seq 1 "$SWITCHES"); do
    if (( i % 2 )); then cmd="cutover b"; else cmd="rollback"; fi
    # As an operator would: wait (up to 60 s) for the lag to fall under half the bound.
    kill -0 $BENCH_PID 2>/dev/null || { echo "pgbench ended before switch $i; raise the duration" >&2; break; }
    wait_from=$(date +%s%N)
    while [ "$(status_field "['live_sync']['pending_changes']")" -gt 5000 ] && (( $(date +%s%N) - wait_from < 60000000000 )); do
        sleep 0.2
    done
    echo $(( ($(date +%s%N) - wait_from) / 1000000 )) >> "$BENCH_DIR/waits"
    pending=$(status_field "['live_sync']['pending_changes']")
    out=$("$SY" ctl --admin "$ADMIN" --json $cmd 2>/dev/null || true)
    ok=$(echo "$out" | python3 -c "import sys, json; print(json.load(sys.stdin).get('ok'))")
    if [ "$ok" = True ]; then
        echo "$out" | python3 -c "import sys, json; print(json.load(sys.stdin)['pause_ms'])" >> "$BENCH_DIR/pauses"
        echo "$pending $(status_field "['live_sync']['last_catch_up']['entries']")" >> "$BENCH_DIR/catchup"
        [ -n "${VERBOSE:-}" ] && "$SY" ctl --admin "$ADMIN" status >&2
    else
        refused=$((refused + 1)); echo "switch $i refused or failed: $out" >&2
    fi
    sleep "$INTERVAL"
done
SWITCH_TO=$(now)
# Leave it on main (an odd count ends on b): one more rollback if needed.
[ "$(status_field "['active']")" = main ] || "$SY" ctl --admin "$ADMIN" rollback >/dev/null
wait $BENCH_PID || true
for _ in $(seq 1 300); do
    [ "$(status_field "['live_sync']['pending_changes']")" = 0 ] && break
    sleep 0.2
done
sleep 1

sort -g "$BENCH_DIR/pauses" > "$BENCH_DIR/pauses.sorted"
n=$(wc -l < "$BENCH_DIR/pauses.sorted")
pct() { awk -v p="$1" -v n="$n" 'NR == int((n - 1) * p + 1) {print; exit}' "$BENCH_DIR/pauses.sorted"; }
awk '/^progress:/{print int($2), $4}' "$BENCH_DIR/pgbench.progress" > "$BENCH_DIR/per-second"
window() { awk -v a="$1" -v b="$2" '$1 > a && $1 <= b {print $2}' "$BENCH_DIR/per-second" | median; }
failed=$(awk '/number of failed transactions/{print $5}' "$BENCH_DIR/pgbench.out")
invariant() {
    PGPASSWORD=secret psql -X -A -t -h 127.0.0.1 -p "$1" -U app -d app -c \
        "SELECT (SELECT sum(abalance) FROM pgbench_accounts) || ' ' || (SELECT sum(tbalance) FROM pgbench_tellers) || ' ' || (SELECT sum(bbalance) FROM pgbench_branches) || ' ' || (SELECT sum(delta) FROM pgbench_history) || ' ' || (SELECT count(*) FROM pgbench_history)"
}
inv_a=$(invariant "$PORT_A"); inv_b=$(invariant "$PORT_B")

[ -n "${VERBOSE:-}" ] && echo "sync at $SYNC_AT s, streaming at $STREAM_AT s, switching $SWITCH_FROM-$SWITCH_TO s, pgbench ran $(tail -1 "$BENCH_DIR/per-second" | cut -d' ' -f1) s" >&2
echo "live cutover benchmark: $CLIENTS pgbench clients (TPC-B, scale $SCALE), live sync main -> b, $n switches every ${INTERVAL}s ($(nproc) cores)"
echo "  pause ms: p50 $(pct 0.5)  p99 $(pct 0.99)  max $(tail -1 "$BENCH_DIR/pauses.sorted")   refused/failed switches: $refused"
echo "  lag at switch (pending changes before -> caught up inside the pause): $(tr '\n' ',' < "$BENCH_DIR/catchup" | sed 's/,$//; s/,/, /g')"
echo "  waits for lag < 5000 before a switch (s): $(awk '{printf "%s%.1f", (NR > 1 ? ", " : ""), $1 / 1000}' "$BENCH_DIR/waits")"
echo "  writes/s (median second): before live sync $(window 1 "$SYNC_AT"), backfill $(window "$SYNC_AT" "$STREAM_AT"), streaming $(window "$STREAM_AT" "$SWITCH_FROM"), switching $(window "$SWITCH_FROM" "$SWITCH_TO"), after $(window "$SWITCH_TO" 100000)"
echo "  pgbench failed transactions: ${failed:-unknown}"
echo "  main: accounts tellers branches history-delta history-rows = $inv_a"
echo "  b:    accounts tellers branches history-delta history-rows = $inv_b"
read -r a1 a2 a3 a4 _ <<< "$inv_a"
if [ "$inv_a" = "$inv_b" ] && [ "$a1" = "$a2" ] && [ "$a2" = "$a3" ] && [ "$a3" = "$a4" ]; then
    echo "  zero lost writes: both sides equal and the TPC-B sums agree"
else
    echo "  LOST OR DIVERGED WRITES"; exit 1
fi
