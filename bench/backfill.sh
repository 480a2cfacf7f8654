#!/usr/bin/env bash
# Backfill speed: a generated SQLite database (ROWS rows over three tables) copied into
# PostgreSQL by switchyard sync and by pgloader, into the same cluster, in one run.
# Prints rows/s for both, the ratio, switchyard's peak memory, and verify's time.
#
#   bash bench/backfill.sh            # 1.2 million rows
#   ROWS=3000000 bash bench/backfill.sh
source "$(dirname "$0")/lib.sh"

ROWS=${ROWS:-1200000}
command -v pgloader >/dev/null || { echo "pgloader is not installed (apt-get install pgloader)" >&2; exit 1; }
(cd "$ROOT" && cargo build --release --quiet)
DB="$BENCH_DIR/app.db"
python3 "$ROOT/bench/gen_sqlite.py" "$DB" "$ROWS"
chmod 644 "$DB"; chmod 755 "$BENCH_DIR"
start_pg main
as_server_user psql -X -q -h "$PG_SOCK" -p "$PG_PORT" -U postgres -d postgres -c "CREATE DATABASE viapgloader OWNER app" >/dev/null
URL="postgres://app:secret@127.0.0.1:$PG_PORT/app?sslmode=disable"

t0=$(date +%s.%N)
/usr/bin/time -v "$ROOT/target/release/switchyard" sync --from "sqlite://$DB" --to "$URL" > "$BENCH_DIR/sync.out" 2> "$BENCH_DIR/sync.err" || { cat "$BENCH_DIR/sync.err"; exit 1; }
t1=$(date +%s.%N)
sy_secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')
peak_kb=$(awk -F': ' '/Maximum resident set size/{print $2}' "$BENCH_DIR/sync.err")

t0=$(date +%s.%N)
"$ROOT/target/release/switchyard" verify --from "sqlite://$DB" --to "$URL" > "$BENCH_DIR/verify.out" 2>&1 || { cat "$BENCH_DIR/verify.out"; exit 1; }
t1=$(date +%s.%N)
verify_secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')

t0=$(date +%s.%N)
pgloader --quiet "$DB" "postgresql://app:secret@127.0.0.1:$PG_PORT/viapgloader" > "$BENCH_DIR/pgloader.out" 2>&1 || { tail -20 "$BENCH_DIR/pgloader.out"; exit 1; }
t1=$(date +%s.%N)
pl_secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')
pl_rows=$(as_server_user psql -X -A -t -h "$PG_SOCK" -p "$PG_PORT" -U postgres -d viapgloader -c \
  "SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM orders) + (SELECT count(*) FROM events)")

echo "backfill benchmark: $ROWS rows over 3 tables ($(nproc) cores), SQLite -> PostgreSQL"
cat "$BENCH_DIR/sync.out" | sed 's/^/  switchyard | /'
awk -v r="$ROWS" -v s="$sy_secs" -v p="$pl_secs" -v pr="$pl_rows" -v v="$verify_secs" -v m="$peak_kb" 'BEGIN {
  printf "  switchyard sync: %.1f s, %.0f rows/s, peak memory %.1f MB\n", s, r / s, m / 1024;
  printf "  pgloader:        %.1f s, %.0f rows/s (%d rows landed)\n", p, pr / p, pr;
  printf "  ratio switchyard/pgloader throughput: %.2f\n", (r / s) / (pr / p);
  printf "  switchyard verify: %.1f s (%.2f of the copy time)\n", v, v / s;
}'
