#!/usr/bin/env bash
# The cost of keeping clients' session state apart: pgbench, 16 clients, three scripts,
# against PostgreSQL directly and through switchyard (pooler = "none", max_pinned = 0, so
# no client keeps a connection of its own and every checkout may serve another client):
#   plain  - SELECT 1
#   set    - SET statement_timeout to a value of the client's own, then SELECT 1: at each
#            checkout the server is brought to the client's settings (SET / RESET)
#   dirty  - set_config(…, false), state switchyard does not track: the connection is
#            cleaned with DISCARD ALL (and the client's settings applied) before another
#            client uses it
# Prints the median TPS of ROUNDS runs and each script's TPS relative to plain.
#
#   bash bench/session_cleanup.sh
#   SECONDS_PER_RUN=10 ROUNDS=5 bash bench/session_cleanup.sh
source "$(dirname "$0")/lib.sh"

CLIENTS=${CLIENTS:-16}
SECS=${SECONDS_PER_RUN:-5}
ROUNDS=${ROUNDS:-3}

(cd "$ROOT" && cargo build --release --quiet)
start_pg main
start_switchyard "postgres://app:secret@127.0.0.1:$PG_PORT/app?sslmode=disable" 20 \
    $'pooler = "none"\nmax_pinned = 0'
declare -A PORT=([direct]=$PG_PORT [switchyard]=$SY_PORT)

printf 'SELECT 1;\n' > "$BENCH_DIR/plain.sql"
printf '\\set t 10000 + :client_id\nSET statement_timeout = :t;\nSELECT 1;\n' > "$BENCH_DIR/set.sql"
printf "SELECT set_config('app.x', ':client_id', false);\n" > "$BENCH_DIR/dirty.sql"

echo "pgbench, $CLIENTS clients, ${SECS}s x $ROUNDS rounds ($(nproc) cores)"
declare -A RUNS TPS
for r in $(seq 1 "$ROUNDS"); do
    for script in plain set dirty; do
        for t in direct switchyard; do
            read -r tps _ f < <(pgbench_run "${PORT[$t]}" -n -c "$CLIENTS" -j 4 -T "$SECS" \
                -f "$BENCH_DIR/$script.sql")
            [ "$f" = 0 ] || echo "  $t $script: failed $f" >&2
            RUNS[$t-$script]+="$tps "
        done
    done
done
for t in direct switchyard; do
    for script in plain set dirty; do
        TPS[$t-$script]=$(echo "${RUNS[$t-$script]}" | tr ' ' '\n' | awk 'NF' | median)
    done
    awk -v t="$t" -v p="${TPS[$t-plain]}" -v s="${TPS[$t-set]}" -v d="${TPS[$t-dirty]}" \
        'BEGIN { printf "  %-11s plain %8.0f   set %8.0f (%.2fx plain)   dirty %8.0f (%.2fx plain)\n", t, p, s, s/p, d, d/p }'
done
awk -v a="${TPS[switchyard-dirty]}" -v b="${TPS[direct-dirty]}" -v c="${TPS[switchyard-plain]}" -v d="${TPS[direct-plain]}" \
    'BEGIN { printf "switchyard/direct: plain %.2f, dirty %.2f\n", c/d, a/b }'
