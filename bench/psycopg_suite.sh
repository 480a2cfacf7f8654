#!/usr/bin/env bash
# Transparency yardstick: psycopg 3's own test suite (pure-Python implementation), run
# against PostgreSQL directly, through PgBouncer in transaction mode, and through
# switchyard (pooler = "none", pooler = "transaction", and the default), all in front of
# the same server, in one run. Prints passed / failed / errors per target and, for each
# target, the tests that fail there but not directly (re-run alone with RERUN=1, to tell a
# test's own failure from a knock-on of an earlier one).
#
# psycopg's tests are not on PyPI: give a checkout of its repository (any recent main;
# nothing is built, its pure-Python package is used from the checkout).
#
#   PSYCOPG_SRC=/path/to/psycopg bash bench/psycopg_suite.sh
#   PSYCOPG_SRC=… TARGETS="direct switchyard-none" RERUN=1 bash bench/psycopg_suite.sh
#   PSYCOPG_SRC=… K="test_pipeline" bash bench/psycopg_suite.sh      # a subset (pytest -k)
source "$(dirname "$0")/lib.sh"

: "${PSYCOPG_SRC:?set PSYCOPG_SRC to a checkout of https://github.com/psycopg/psycopg}"
TARGETS=${TARGETS:-direct pgbouncer-transaction switchyard-none switchyard-transaction switchyard-default}
VENV=$ROOT/target/psycopg-venv
if ! "$VENV/bin/python" -c "import pytest, anyio, pproxy" >/dev/null 2>&1; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --upgrade pip
    "$VENV/bin/pip" install --quiet pytest anyio pproxy typing_extensions
fi
(cd "$ROOT" && cargo build --release --quiet)

start_pg main
start_bouncer "$PG_PORT" transaction 20
url() { echo "host=127.0.0.1 port=$1 user=app password=secret dbname=app sslmode=disable"; }

# The suite's selection: everything but the slow, timing and mypy tests, and the folders
# and files that test something other than a connection (the pool, typing, DNS SRV,
# gevent, free-threading, CockroachDB, Windows).
run_suite() {
    local name=$1 dsn=$2 out="$BENCH_DIR/$1"
    (cd "$PSYCOPG_SRC" && PYTHONPATH="$PSYCOPG_SRC/psycopg" PSYCOPG_IMPL=python \
        timeout 1800 "$VENV/bin/python" -m pytest tests -q -p no:randomly \
        -m "not slow and not timing and not mypy" ${K:+-k "$K"} \
        --ignore=tests/pool --ignore=tests/crdb --ignore=tests/test_typing.py \
        --ignore=tests/test_dns_srv.py --ignore=tests/test_gevent.py \
        --ignore=tests/test_free_threading.py --ignore=tests/test_windows.py \
        -o cache_dir="$out.cache" --test-dsn "$dsn" -rfE -o junit_family=xunit1 --junit-xml="$out.xml" >"$out.log" 2>&1) || true
    [ -f "$out.xml" ] || { echo "pytest did not run for $name:" >&2; tail -20 "$out.log" >&2; return 1; }
    "$VENV/bin/python" "$ROOT/bench/junit_summary.py" "$out.xml" "$out.failed"
}

declare -A SUMMARY
for t in $TARGETS; do
    case $t in
        direct) port=$PG_PORT ;;
        pgbouncer-transaction) port=$BOUNCER_PORT ;;
        switchyard-none) start_switchyard "postgres://app:secret@127.0.0.1:$PG_PORT/app?sslmode=disable" 20 'pooler = "none"'; port=$SY_PORT ;;
        switchyard-transaction) start_switchyard "postgres://app:secret@127.0.0.1:$PG_PORT/app?sslmode=disable" 20 'pooler = "transaction"'; port=$SY_PORT ;;
        switchyard-default) start_switchyard "postgres://app:secret@127.0.0.1:$PG_PORT/app?sslmode=disable" 20; port=$SY_PORT ;;
        *) echo "unknown target $t" >&2; exit 2 ;;
    esac
    SUMMARY[$t]=$(run_suite "$t" "$(url "$port")")
    eval "PORT_$(echo "$t" | tr - _)=$port"
done

echo "psycopg $(cd "$PSYCOPG_SRC" && git log -1 --format='%h %cd' --date=short 2>/dev/null || echo '?') test suite, pure Python, $(date -u +%F)"
for t in $TARGETS; do printf '  %-24s %s\n' "$t" "${SUMMARY[$t]}"; done
base="$BENCH_DIR/direct.failed"
[ -f "$base" ] || : > "$base"
for t in $TARGETS; do
    [ "$t" = direct ] && continue
    extra=$(comm -13 "$base" "$BENCH_DIR/$t.failed" | wc -l)
    echo
    echo "== $t: $extra failing here but not directly"
    comm -13 "$base" "$BENCH_DIR/$t.failed" > "$BENCH_DIR/$t.extra"
    if [ -n "${RERUN:-}" ] && [ "$extra" -gt 0 ]; then
        port_var="PORT_$(echo "$t" | tr - _)"
        alone=0
        while read -r id; do
            if ! (cd "$PSYCOPG_SRC" && PYTHONPATH="$PSYCOPG_SRC/psycopg" PSYCOPG_IMPL=python \
                "$VENV/bin/python" -m pytest -q -p no:randomly "$id" \
                --test-dsn "$(url "${!port_var}")" >/dev/null 2>&1); then
                echo "  $id   (fails alone too)"; alone=$((alone + 1))
            else
                echo "  $id   (passes alone: a knock-on)"
            fi
        done < "$BENCH_DIR/$t.extra"
        echo "  -> $alone fail alone"
    else
        sed 's/^/  /' "$BENCH_DIR/$t.extra"
    fi
done
if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP"; cp "$BENCH_DIR"/*.log "$BENCH_DIR"/*.failed "$KEEP"/ 2>/dev/null || true; fi
