#!/usr/bin/env bash
# Backfill speed: a generated SQLite database (ROWS rows over three tables) copied into
# PostgreSQL by switchyard sync and by pgloader, into the same cluster, in one run (ROUNDS
# interleaved rounds, medians reported).
# Prints rows/s for both, the ratio, switchyard's peak memory, and verify's time.
#
#   bash bench/backfill.sh            # 1.2 million rows
#   ROWS=3000000 ROUNDS=5 bash bench/backfill.sh
source "$(dirname "$0")/lib.sh"

ROWS=${ROWS:-1200000}
command -v pgloader >/dev/null || { echo "pgloader is not installed (apt-get install pgloader)" >&2; exit 1; }
(cd "$ROOT" && cargo build --release --quiet)
DB="$BENCH_DIR/app.db"
python3 "$ROOT/bench/gen_sqlite.py" "$DB" "$ROWS"
chmod 644 "$DB"; chmod 755 "$BENCH_DIR"
start_pg main
ROUNDS=${ROUNDS:-3}
make_db() { as_server_user psql -X -q -h "$PG_SOCK" -p "$PG_PORT" -U postgres -d postgres -c "CREATE DATABASE $1 OWNER app" >/dev/null; }
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{print b-a}'; }

# Rounds interleave the three jobs, each into a fresh database, so drift hits all alike.
for r in $(seq 1 "$ROUNDS"); do
    make_db "sy$r"; make_db "pl$r"
    URL="postgres://app:secret@127.0.0.1:$PG_PORT/sy$r?sslmode=disable"
    t0=$(date +%s.%N)
    /usr/bin/time -v "$ROOT/target/release/switchyard" sync --from "sqlite://$DB" --to "$URL" > "$BENCH_DIR/sync.out" 2> "$BENCH_DIR/sync.err" || { cat "$BENCH_DIR/sync.err"; exit 1; }
    SY+=("$(elapsed "$t0")")
    PEAK+=("$(awk -F': ' '/Maximum resident set size/{print $2}' "$BENCH_DIR/sync.err")")
    t0=$(date +%s.%N)
    "$ROOT/target/release/switchyard" verify --from "sqlite://$DB" --to "$URL" > "$BENCH_DIR/verify.out" 2>&1 || { cat "$BENCH_DIR/verify.out"; exit 1; }
    VER+=("$(elapsed "$t0")")
    t0=$(date +%s.%N)
    pgloader --quiet "$DB" "postgresql://app:secret@127.0.0.1:$PG_PORT/pl$r" > "$BENCH_DIR/pgloader.out" 2>&1 || { tail -20 "$BENCH_DIR/pgloader.out"; exit 1; }
    PL+=("$(elapsed "$t0")")
    pl_rows=$(as_server_user psql -X -A -t -h "$PG_SOCK" -p "$PG_PORT" -U postgres -d "pl$r" -c \
      "SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM orders) + (SELECT count(*) FROM events)")
    [ "$pl_rows" = "$ROWS" ] || { echo "pgloader landed $pl_rows of $ROWS rows" >&2; exit 1; }
    echo "  round $r: sync ${SY[-1]} s, verify ${VER[-1]} s, pgloader ${PL[-1]} s"
done
sy_secs=$(printf '%s\n' "${SY[@]}" | median)
verify_secs=$(printf '%s\n' "${VER[@]}" | median)
pl_secs=$(printf '%s\n' "${PL[@]}" | median)
peak_kb=$(printf '%s\n' "${PEAK[@]}" | sort -n | tail -1)

echo "backfill benchmark: $ROWS rows over 3 tables ($(nproc) cores), SQLite -> PostgreSQL, median of $ROUNDS rounds"
sed 's/^/  switchyard | /' "$BENCH_DIR/sync.out"
awk -v r="$ROWS" -v s="$sy_secs" -v p="$pl_secs" -v v="$verify_secs" -v m="$peak_kb" 'BEGIN {
  printf "  switchyard sync: %.2f s, %.0f rows/s, peak memory %.1f MB\n", s, r / s, m / 1024;
  printf "  pgloader:        %.2f s, %.0f rows/s\n", p, r / p;
  printf "  ratio switchyard/pgloader throughput: %.2f\n", p / s;
  printf "  switchyard verify: %.2f s (%.2f of the copy time)\n", v, v / s;
}'
