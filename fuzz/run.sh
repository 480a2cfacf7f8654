#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz, libFuzzer) of the decoders that face untrusted input:
#   protocol  frontend message framing, the message parsers, the startup packet decoder
#   sql       the relay's statement scanner and the PostgreSQL -> SQLite translator
#   config    config files (TOML, ${VAR} expansion, validation)
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). Each target runs
# for SECONDS (default 60) with a 512 MB memory cap and a 5 s per-input limit, so a panic,
# a hang or an unbounded allocation fails the run; a crash input is written under
# fuzz/artifacts/TARGET/ (turn it into a regression test in tests/fuzz_smoke.rs).
#
#   bash fuzz/run.sh              # 60 s per target
#   bash fuzz/run.sh 600 sql      # 10 minutes on one target
#   FUZZ_RUNS=20000 bash fuzz/run.sh   # a fixed number of inputs from a fixed seed (CI)
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
shift || true
targets=("${@:-protocol}")
[ $# -gt 0 ] || targets=(protocol sql config)
limits=(-rss_limit_mb=512 -malloc_limit_mb=512 -timeout=5 -max_len=65536 -print_final_stats=1)
if [ -n "${FUZZ_RUNS:-}" ]; then
    limits+=(-runs="$FUZZ_RUNS" -seed=1)
else
    limits+=(-max_total_time="$seconds")
fi
for t in "${targets[@]}"; do
    mkdir -p "target/corpus/$t"
    echo "== fuzzing $t"
    log="target/$t.log"
    rc=0
    cargo +nightly fuzz run "$t" "target/corpus/$t" "seeds/$t" -- "${limits[@]}" >"$log" 2>&1 || rc=$?
    grep -E 'stat::|Done|ERROR|panicked|SUMMARY|Test unit written|INFO: seed' "$log" || true
    [ "$rc" = 0 ] || { tail -40 "$log" >&2; echo "fuzz target $t failed" >&2; exit 1; }
done
