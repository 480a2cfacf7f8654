#!/usr/bin/env bash
# Transparency yardstick, second client: asyncpg's own test suite (its release's tests,
# against the same release from PyPI) run against PostgreSQL directly, through PgBouncer in
# transaction mode, and through switchyard, all in front of the same server, in one run.
# Prints passed / failed / errors per target and the tests that fail there but not
# directly (re-run alone with RERUN=1).
#
# asyncpg's tests are not in its wheel: give a checkout of its repository; the tests of
# tag v$ASYNCPG_VERSION are used.
#
#   ASYNCPG_SRC=/path/to/asyncpg bash bench/asyncpg_suite.sh
#   ASYNCPG_SRC=… TARGETS="direct switchyard-default" RERUN=1 bash bench/asyncpg_suite.sh
source "$(dirname "$0")/lib.sh"

: "${ASYNCPG_SRC:?set ASYNCPG_SRC to a checkout of https://github.com/MagicStack/asyncpg}"
ASYNCPG_VERSION=${ASYNCPG_VERSION:-0.31.0}
TARGETS=${TARGETS:-direct pgbouncer-transaction switchyard-default switchyard-transaction}
VENV=$ROOT/target/asyncpg-venv
if ! "$VENV/bin/python" -c "import asyncpg, pytest, distro; assert asyncpg.__version__ == '$ASYNCPG_VERSION'" >/dev/null 2>&1; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --upgrade pip
    "$VENV/bin/pip" install --quiet "asyncpg==$ASYNCPG_VERSION" pytest distro
fi
TESTS="$BENCH_DIR/asyncpg-tests"
mkdir -p "$TESTS"
(cd "$ASYNCPG_SRC" && git archive "v$ASYNCPG_VERSION" tests) | tar -x -C "$TESTS"
(cd "$ROOT" && cargo build --release --quiet)

start_pg main
start_bouncer "$PG_PORT" transaction 20
# asyncpg's tests connect to "postgres" and to databases they create; switchyard serves
# one database (the backend's), so it is told to take any name for it. Tests that need
# another database's contents are among the differences.
export SY_PROXY_EXTRA='databases = ["*"]'

# The suite's selection: what tests a connection (not the test harness itself, the source
# checks, or sub-interpreters).
run_suite() {
    local name=$1 port=$2 out="$BENCH_DIR/$1"
    (cd "$TESTS" && PGHOST=127.0.0.1 PGPORT=$port PGUSER=app PGPASSWORD=secret PGDATABASE=app \
        timeout "${SUITE_TIMEOUT:-600}" "$VENV/bin/python" -m pytest tests -q -p no:randomly ${K:+-k "$K"} \
        --ignore=tests/test__sourcecode.py --ignore=tests/test__environment.py \
        --ignore=tests/test_subinterpreters.py --ignore=tests/test_test.py \
        -o cache_dir="$out.cache" -o junit_family=xunit1 --junit-xml="$out.xml" >"$out.log" 2>&1) || true
    if [ ! -f "$out.xml" ]; then
        # (PgBouncer 1.18 in transaction mode hangs in this suite: a result in itself.)
        echo "did not finish within ${SUITE_TIMEOUT:-600} s (log: $out.log)"
        : > "$out.failed"
        return 0
    fi
    "$VENV/bin/python" "$ROOT/bench/junit_summary.py" "$out.xml" "$out.failed"
}

declare -A SUMMARY PORT
for t in $TARGETS; do
    case $t in
        direct) port=$PG_PORT ;;
        pgbouncer-transaction) port=$BOUNCER_PORT ;;
        switchyard-default) start_switchyard "postgres://app:secret@127.0.0.1:$PG_PORT/app?sslmode=disable" 20; port=$SY_PORT ;;
        switchyard-transaction) start_switchyard "postgres://app:secret@127.0.0.1:$PG_PORT/app?sslmode=disable" 20 'pooler = "transaction"'; port=$SY_PORT ;;
        *) echo "unknown target $t" >&2; exit 2 ;;
    esac
    PORT[$t]=$port
    SUMMARY[$t]=$(run_suite "$t" "$port")
done

echo "asyncpg $ASYNCPG_VERSION test suite, $(date -u +%F)"
for t in $TARGETS; do printf '  %-24s %s\n' "$t" "${SUMMARY[$t]}"; done
base="$BENCH_DIR/direct.failed"
[ -f "$base" ] || : > "$base"
for t in $TARGETS; do
    [ "$t" = direct ] && continue
    comm -13 "$base" "$BENCH_DIR/$t.failed" > "$BENCH_DIR/$t.extra"
    echo
    echo "== $t: $(wc -l < "$BENCH_DIR/$t.extra") failing here but not directly"
    if [ -z "${RERUN:-}" ]; then
        sed 's/^/  /' "$BENCH_DIR/$t.extra"
        continue
    fi
    alone=0
    while read -r id; do
        if ! (cd "$TESTS" && PGHOST=127.0.0.1 PGPORT=${PORT[$t]} PGUSER=app PGPASSWORD=secret \
            PGDATABASE=app "$VENV/bin/python" -m pytest -q -p no:randomly "$id" >/dev/null 2>&1); then
            echo "  $id   (fails alone too)"; alone=$((alone + 1))
        else
            echo "  $id   (passes alone: a knock-on)"
        fi
    done < "$BENCH_DIR/$t.extra"
    echo "  -> $alone fail alone"
done
if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP"; cp "$BENCH_DIR"/*.log "$BENCH_DIR"/*.failed "$KEEP"/ 2>/dev/null || true; fi
