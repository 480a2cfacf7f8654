#!/usr/bin/env bash
# Serving SQLite over the PostgreSQL protocol: point selects and single-row inserts with 1
# and 16 clients through switchyard on a SQLite file, against the same statements run
# directly with rusqlite in process (the limit), and against the same workload through
# switchyard on PostgreSQL. Prints ops/s and the ratio to direct SQLite, then the wire
# ceiling: how fast pgbench gets answers from a server that does no work at all.
#
#   bash bench/sqlite.sh            # 100000 rows, 8 s per run
source "$(dirname "$0")/lib.sh"
ROWS=${ROWS:-100000}
SECS=${SECS:-8}
cd "$ROOT"
cargo build --release --quiet
cargo build --release --quiet --example sqlite_direct
DIRECT="$ROOT/target/release/examples/sqlite_direct"

DB="$BENCH_DIR/app.db"  # the file name is the database name clients ask for
python3 - "$DB" "$ROWS" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("PRAGMA journal_mode=WAL")
c.execute("CREATE TABLE kv (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
c.executemany("INSERT INTO kv (v) VALUES (?)", (("value %d" % i,) for i in range(int(sys.argv[2]))))
c.commit()
PY
start_pg pgside
as_server_user psql -X -q -h "$PG_SOCK" -p "$PG_PORT" -U app -d app -c \
    "CREATE TABLE kv (id bigserial PRIMARY KEY, v text NOT NULL); INSERT INTO kv (v) SELECT 'value ' || g FROM generate_series(1, $ROWS) g" >/dev/null
start_switchyard "sqlite://$DB" 4
SQ_PORT=$SY_PORT
start_switchyard "postgres://app:secret@127.0.0.1:$PG_PORT/app?sslmode=disable" 16 'pooler = "none"'
PGSY_PORT=$SY_PORT

printf '\\set id random(1, %s)\nSELECT v FROM kv WHERE id = :id;\n' "$ROWS" > "$BENCH_DIR/select.sql"
printf 'INSERT INTO kv (v) VALUES (%s);\n' "'inserted'" > "$BENCH_DIR/insert.sql"

proxied() { # PORT SCRIPT CLIENTS -> ops/s
    pgbench_run "$1" -n -M prepared -f "$BENCH_DIR/$2.sql" -c "$3" -j "$3" -T "$SECS" | awk '{print $1}'
}

echo "SQLite serving: $ROWS rows, ${SECS}s per run, $(nproc) cores; ops/s"
printf '%-8s %-8s %12s %14s %8s %16s\n' workload clients "direct" "switchyard" "ratio" "switchyard->PG"
for w in select insert; do
    for c in 1 16; do
        d=$("$DIRECT" "$DB" "$c" "$SECS" "$w" "$ROWS")
        s=$(proxied "$SQ_PORT" "$w" "$c")
        p=$(proxied "$PGSY_PORT" "$w" "$c")
        printf '%-8s %-8s %12.0f %14.0f %8.2f %16.0f\n' "$w" "$c" "$d" "$s" "$(echo "$s / $d" | bc -l)" "$p"
    done
done

# The ceiling of any server over the wire on this machine: PgBouncer's admin console
# answers SHOW VERSION from memory (C, no backend), so pgbench cannot go faster than this.
BOUNCER_EXTRA="admin_users = app" start_bouncer "$PG_PORT" transaction 1
echo 'SHOW VERSION;' > "$BENCH_DIR/ceiling.sql"
for c in 1 16; do
    ceil=$(PGB_DB=pgbouncer pgbench_run "$BOUNCER_PORT" -n -M simple -f "$BENCH_DIR/ceiling.sql" -c "$c" -j "$c" -T "$SECS" | awk '{print $1}')
    printf 'wire ceiling, %2s client(s): %.0f answers/s (PgBouncer admin console, SHOW VERSION)\n' "$c" "${ceil%%.*}"
done
