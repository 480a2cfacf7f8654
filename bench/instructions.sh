#!/usr/bin/env bash
# User-space instructions per transaction in the proxy, counted by callgrind: a number that
# does not move with the noise of a shared 2-core machine, for A/B-ing changes to the hot
# path (the CPU times in bench/proxy.sh vary by ±0.3 µs between runs). Runs switchyard
# under valgrind in front of a throwaway PostgreSQL, warms it up, then counts only the
# measured pgbench run (select-only, 4 clients). Needs valgrind (apt-get install valgrind).
#
#   bash bench/instructions.sh                    # -M extended and -M prepared
#   SY_BIN=/tmp/old-switchyard TX=5000 bash bench/instructions.sh
source "$(dirname "$0")/lib.sh"

TX=${TX:-2500}
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
[ -n "${SY_BIN:-}" ] || (cd "$ROOT" && cargo build --release --quiet)
BIN=${SY_BIN:-$ROOT/target/release/switchyard}
start_pg main
PGPASSWORD=secret "$PG_BIN/pgbench" -h 127.0.0.1 -p "$PG_PORT" -U app -i -s 1 -q app >/dev/null 2>&1

pgbench_n() {
    PGPASSWORD=secret "$PG_BIN/pgbench" -h 127.0.0.1 -p "$SY_PORT" -U app -S -c 4 -j 2 -t "$1" -M "$2" app >/dev/null 2>&1
}

for mode in extended prepared; do
    out="$BENCH_DIR/callgrind-$mode"
    printf '#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file=%s "%s" "$@"\n' "$out" "$BIN" > "$BENCH_DIR/under-callgrind"
    chmod +x "$BENCH_DIR/under-callgrind"
    SY_BIN="$BENCH_DIR/under-callgrind" start_switchyard "postgres://app:secret@127.0.0.1:$PG_PORT/app?sslmode=disable" 20 'pooler = "none"'
    pgbench_n 300 "$mode"
    callgrind_control -z "$SY_PID" >/dev/null 2>&1
    pgbench_n "$TX" "$mode"
    callgrind_control -d "$SY_PID" >/dev/null 2>&1
    sleep 1
    ir=$(awk '/^(summary|totals):/ { s = $2 } END { print s }' "$out".*)
    awk -v ir="$ir" -v n=$((4 * TX)) -v m="$mode" \
        'BEGIN { printf "  -M %-9s %6.0f instructions per transaction in the proxy (%d transactions)\n", m, ir / n, n }'
    kill "$SY_PID" 2>/dev/null || true
    wait "$SY_PID" 2>/dev/null || true
done
