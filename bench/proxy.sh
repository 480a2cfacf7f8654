#!/usr/bin/env bash
# Proxy overhead: pgbench select-only, 16 clients, against PostgreSQL directly, PgBouncer
# (transaction mode) and switchyard, in extended and prepared modes, in one run on one
# machine, switchyard with its default config. Prints the median TPS and latency of ROUNDS runs, each proxy's own CPU time
# per transaction (user and system, from /proc), and the ratios switchyard/direct and
# switchyard/PgBouncer. Also runs examples/bare_relay.rs, a tokio relay that only copies
# bytes (one server connection per client), as the floor of any proxy on that runtime.
#
#   bash bench/proxy.sh            # defaults: 16 clients, 10 s per run, 3 rounds
#   CLIENTS=32 SECONDS_PER_RUN=20 ROUNDS=5 bash bench/proxy.sh
source "$(dirname "$0")/lib.sh"

CLIENTS=${CLIENTS:-16}
THREADS=${THREADS:-4}
SECS=${SECONDS_PER_RUN:-10}
ROUNDS=${ROUNDS:-3}
POOL=${POOL:-20}

(cd "$ROOT" && cargo build --release --quiet && cargo build --release --quiet --example bare_relay)
start_pg main
PGPASSWORD=secret "$PG_BIN/pgbench" -h 127.0.0.1 -p "$PG_PORT" -U app -i -s 10 -q app >/dev/null 2>&1
start_bouncer "$PG_PORT" transaction "$POOL"
DIRECT=$PG_PORT
BOUNCER=$BOUNCER_PORT
declare -A PID=([pgbouncer]=$BOUNCER_PID)
start_bouncer "$PG_PORT" session $((CLIENTS + 4))
BOUNCER_SESSION=$BOUNCER_PORT
PID[pgbouncer-session]=$BOUNCER_PID
# The default config (pooler = "auto" finds a direct server here).
start_switchyard "postgres://app:secret@127.0.0.1:$PG_PORT/app?sslmode=disable" "$POOL"
SY_DIRECT=$SY_PORT
PID[switchyard]=$SY_PID
start_switchyard "postgres://app:secret@127.0.0.1:$BOUNCER/app?sslmode=disable" "$POOL"
SY_POOLER=$SY_PORT
PID[switchyard-via-pgbouncer]=$SY_PID
BARE=$(free_port)
setsid "$ROOT/target/release/examples/bare_relay" "127.0.0.1:$BARE" "127.0.0.1:$PG_PORT" 2>"$BENCH_DIR/bare_relay.log" &
PID[tokio-bare-relay]=$!
PIDS+=("${PID[tokio-bare-relay]}")
wait_port "$BARE"

declare -A TPS LAT FAIL
targets=(direct pgbouncer pgbouncer-session switchyard switchyard-via-pgbouncer tokio-bare-relay)
declare -A PORT=([direct]=$DIRECT [pgbouncer]=$BOUNCER [pgbouncer-session]=$BOUNCER_SESSION [switchyard]=$SY_DIRECT [switchyard-via-pgbouncer]=$SY_POOLER [tokio-bare-relay]=$BARE)

echo "pgbench -S, $CLIENTS clients, $THREADS threads, ${SECS}s x $ROUNDS rounds (interleaved), pool $POOL ($(nproc) cores)"
declare -A RUNS
for r in $(seq 1 "$ROUNDS"); do
    for mode in extended prepared; do
        for t in "${targets[@]}"; do
            read -r u0 s0 < <(cpu_ticks "${PID[$t]:-}")
            read -r tps lat f < <(pgbench_run "${PORT[$t]}" -S -c "$CLIENTS" -j "$THREADS" -T "$SECS" -M "$mode")
            read -r u1 s1 < <(cpu_ticks "${PID[$t]:-}")
            # The proxy's own CPU per transaction (µs, user and system): steadier than
            # TPS on a shared machine. PgBouncer's includes only its own process.
            cpu=$(awk -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v t="$tps" -v d="$SECS" \
                'BEGIN { n = t * d; if (n > 0) printf "%.2f/%.2f", u * 1e4 / n, s * 1e4 / n; else print "-/-" }')
            RUNS[$t-$mode]+="$tps $lat $f $cpu;"
        done
    done
done
for mode in extended prepared; do
    for t in "${targets[@]}"; do
        runs=${RUNS[$t-$mode]}
        TPS[$t-$mode]=$(echo "$runs" | tr ';' '\n' | awk 'NF{print $1}' | median)
        LAT[$t-$mode]=$(echo "$runs" | tr ';' '\n' | awk 'NF{print $2}' | median)
        FAIL[$t-$mode]=$(echo "$runs" | tr ';' '\n' | awk 'NF{ if ($3 == "error") e = 1; else n += $3 } END { print (e ? "error" : n) }')
        cpu_u=$(echo "$runs" | tr ';' '\n' | awk 'NF{split($4, c, "/"); print c[1]}' | median)
        cpu_s=$(echo "$runs" | tr ';' '\n' | awk 'NF{split($4, c, "/"); print c[2]}' | median)
        if [ -n "${PID[$t]:-}" ]; then cpu="proxy CPU/tx ${cpu_u} us user + ${cpu_s} us sys"; else cpu=""; fi
        printf '  %-26s -M %-9s tps %10.0f  latency %7.3f ms  failed %-5s %s\n' "$t" "$mode" "${TPS[$t-$mode]}" "${LAT[$t-$mode]}" "${FAIL[$t-$mode]}" "$cpu"
    done
done
echo
echo "ratios (median TPS):"
for mode in extended prepared; do
    awk -v s="${TPS[switchyard-$mode]}" -v d="${TPS[direct-$mode]}" -v b="${TPS[pgbouncer-$mode]}" \
        -v bs="${TPS[pgbouncer-session-$mode]}" -v m="$mode" \
        'BEGIN { printf "  -M %-9s switchyard/direct %.2f   switchyard/pgbouncer(transaction) %s   switchyard/pgbouncer(session) %s\n",
                 m, s/d, (b > 0 ? sprintf("%.2f", s/b) : "n/a (pgbouncer failed)"), (bs > 0 ? sprintf("%.2f", s/bs) : "n/a (pgbouncer failed)") }'
done
awk -v p="${TPS[switchyard-prepared]}" -v e="${TPS[switchyard-extended]}" \
    'BEGIN { printf "  switchyard -M prepared / -M extended %.2f (prepared statements should pay off)\n", p/e }'
for mode in extended prepared; do
    awk -v r="${TPS[tokio-bare-relay-$mode]}" -v bs="${TPS[pgbouncer-session-$mode]}" -v m="$mode" \
        'BEGIN { printf "  -M %-9s floor: tokio-bare-relay/pgbouncer(session) %.2f (bytes only, no pooling)\n", m, r/bs }'
done
echo "  -M prepared through a transaction pooler: pgbouncer alone failed=${FAIL[pgbouncer-prepared]}, switchyard in front of it failed=${FAIL[switchyard-via-pgbouncer-prepared]}"
