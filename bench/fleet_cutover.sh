#!/usr/bin/env bash
# Fleet cutover under writes: three switchyard members (one [fleet], its store on "main"),
# 16 pgbench clients (TPC-B-like, every transaction writes) through each, live sync from
# PostgreSQL "main" to an empty "b", then SWITCHES fleet switches alternating cutover and
# rollback, each asked of a different member (the sync leader runs them). Prints the fleet
# pause (first member paused to last member serving again) p50/p99/max, the phase times,
# each pgbench's failed transactions (must be 0), writes refused by the fences (must be
# 0: nobody writes past the proxies), and the TPC-B invariant on both sides at the end.
#
#   bash bench/fleet_cutover.sh               # 3 members x 16 clients, 10 switches
#   CLIENTS=8 SWITCHES=20 bash bench/fleet_cutover.sh
source "$(dirname "$0")/lib.sh"

MEMBERS=${MEMBERS:-3}
CLIENTS=${CLIENTS:-16}
SWITCHES=${SWITCHES:-10}
INTERVAL=${INTERVAL:-2}
SCALE=${SCALE:-5}
SY="$ROOT/target/release/switchyard"

(cd "$ROOT" && cargo build --release --quiet)
start_pg a; PORT_A=$PG_PORT
start_pg b; PORT_B=$PG_PORT
pgbench_init_keyed "$PORT_A" "$SCALE"
PORTS=(); ADMINS=()
for m in $(seq 1 "$MEMBERS"); do
    start_switchyard "postgres://app:secret@127.0.0.1:$PORT_A/app?sslmode=disable" 24 \
"pooler = \"none\"
[backends.b]
url = \"postgres://app:secret@127.0.0.1:$PORT_B/app?sslmode=disable\"
pool_size = 24
pooler = \"none\"
[routing]
active = \"main\"
state_file = \"$BENCH_DIR/route-$m.json\"
[switch]
drain_timeout = \"5s\"
max_pause = \"10s\"
[fleet]
name = \"bench\"
store = \"main\"
member = \"m$m\""
    PORTS+=("$SY_PORT"); ADMINS+=("http://127.0.0.1:$SY_ADMIN_PORT")
done
status_field() {
    python3 -c "import sys, json, urllib.request; d = json.load(urllib.request.urlopen(sys.argv[1] + sys.argv[3])); print(eval('d' + sys.argv[2]))" "${ADMINS[0]}" "$1" "${2:-/status}"
}
for _ in $(seq 1 100); do
    [ "$(status_field "['members'].__len__()" /fleet)" = "$MEMBERS" ] && break
    sleep 0.1
done

DURATION=${DURATION:-$(( 5 + 40 + SWITCHES * (INTERVAL + 2) + 10 ))}
BENCH_PIDS=()
for m in $(seq 0 $(( MEMBERS - 1 ))); do
    PGPASSWORD=secret "$PG_BIN/pgbench" -h 127.0.0.1 -p "${PORTS[$m]}" -U app -c "$CLIENTS" -j 2 -T "$DURATION" -P 1 app \
        >"$BENCH_DIR/pgbench-$m.out" 2>"$BENCH_DIR/pgbench-$m.progress" &
    BENCH_PIDS+=($!)
done
sleep 5
"$SY" ctl --admin "${ADMINS[0]}" sync main b >/dev/null
for _ in $(seq 1 600); do
    [ "$(status_field "['live_sync']['phase']")" = streaming ] && break
    sleep 0.1
done
sleep 5
: > "$BENCH_DIR/pauses"; : > "$BENCH_DIR/phases"; refused=0
for i in $(seq 1 "$SWITCHES"); do
    if (( i % 2 )); then cmd="cutover b"; else cmd="rollback"; fi
    asked=${ADMINS[$(( i % MEMBERS ))]}
    while [ "$(status_field "['live_sync']['pending_changes']")" -gt 5000 ]; do sleep 0.2; done
    out=$("$SY" ctl --admin "$asked" --json $cmd 2>/dev/null || true)
    ok=$(echo "$out" | python3 -c "import sys, json; print(json.load(sys.stdin).get('ok'))")
    if [ "$ok" = True ]; then
        echo "$out" | python3 -c "import sys, json; f = json.load(sys.stdin)['fleet']; print(f['fleet_pause_ms'])" >> "$BENCH_DIR/pauses"
        echo "$out" | python3 -c "import sys, json; d = json.load(sys.stdin); f = d['fleet']; print(f['prepare_ms'], f['commit_ms'], d['pause_ms'])" >> "$BENCH_DIR/phases"
    else
        refused=$((refused + 1)); echo "switch $i refused or failed: $out" >&2
    fi
    sleep "$INTERVAL"
done
[ "$(status_field "['active']")" = main ] || "$SY" ctl --admin "${ADMINS[0]}" rollback >/dev/null
for pid in "${BENCH_PIDS[@]}"; do wait "$pid" || true; done
for _ in $(seq 1 300); do
    [ "$(status_field "['live_sync']['pending_changes']")" = 0 ] && break
    sleep 0.2
done
sleep 1

sort -g "$BENCH_DIR/pauses" > "$BENCH_DIR/pauses.sorted"
n=$(wc -l < "$BENCH_DIR/pauses.sorted")
pct() { awk -v p="$1" -v n="$n" 'NR == int((n - 1) * p + 1) {print; exit}' "$BENCH_DIR/pauses.sorted"; }
col_median() { awk -v c="$1" '{print $c}' "$BENCH_DIR/phases" | median; }
failed=$(for m in $(seq 0 $(( MEMBERS - 1 ))); do awk '/number of failed transactions/{print $5}' "$BENCH_DIR/pgbench-$m.out"; done | tr '\n' ' ')
tps=$(for m in $(seq 0 $(( MEMBERS - 1 ))); do awk '/^tps = /{printf "%.0f", $3}' "$BENCH_DIR/pgbench-$m.out"; echo -n " "; done)
fence_refused=$(status_field "['fences']" /fleet)
invariant() {
    PGPASSWORD=secret psql -X -A -t -h 127.0.0.1 -p "$1" -U app -d app -c \
        "SELECT (SELECT sum(abalance) FROM pgbench_accounts) || ' ' || (SELECT sum(tbalance) FROM pgbench_tellers) || ' ' || (SELECT sum(bbalance) FROM pgbench_branches) || ' ' || (SELECT sum(delta) FROM pgbench_history) || ' ' || (SELECT count(*) FROM pgbench_history)"
}
inv_a=$(invariant "$PORT_A"); inv_b=$(invariant "$PORT_B")
captured_b=$(PGPASSWORD=secret psql -X -A -t -h 127.0.0.1 -p "$PORT_B" -U app -d app -c "SELECT count(*) FROM switchyard.changelog")

echo "fleet cutover benchmark: $MEMBERS members x $CLIENTS pgbench clients (TPC-B, scale $SCALE), live sync main -> b, $n fleet switches every ${INTERVAL}s ($(nproc) cores)"
echo "  fleet pause ms (first member paused -> last member serving): p50 $(pct 0.5)  p99 $(pct 0.99)  max $(tail -1 "$BENCH_DIR/pauses.sorted")   refused/failed switches: $refused"
echo "  phase medians ms: prepare (all acknowledged) $(col_median 1), commit (fence, tail, store) $(col_median 2), coordinator's own pause $(col_median 3)"
echo "  pgbench tps per member: $tps  failed transactions per member: $failed"
echo "  fences: $fence_refused"
echo "  main: accounts tellers branches history-delta history-rows = $inv_a"
echo "  b:    accounts tellers branches history-delta history-rows = $inv_b"
echo "  writes captured on the inactive side b: $captured_b"
read -r a1 a2 a3 a4 _ <<< "$inv_a"
if [ "$inv_a" = "$inv_b" ] && [ "$a1" = "$a2" ] && [ "$a2" = "$a3" ] && [ "$a3" = "$a4" ] && [ "$captured_b" = 0 ]; then
    echo "  zero lost writes: both sides equal, the TPC-B sums agree, nothing written to the fenced side"
else
    echo "  LOST OR DIVERGED WRITES"; exit 1
fi
