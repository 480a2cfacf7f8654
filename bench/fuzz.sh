#!/usr/bin/env bash
# Longer random-input runs of tests/fuzz_smoke.rs (framer, startup decoder, message
# parsers, SQL translator, config parser). FUZZ_ITERS multiplies the iterations the test
# suite runs (x100 here: 2 million protocol inputs, 300 000 SQL texts, 200 000 configs).
#
#   bash bench/fuzz.sh          # x100
#   bash bench/fuzz.sh 1000     # x1000
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_ITERS=${1:-100} cargo test --release --test fuzz_smoke
