#!/usr/bin/env bash
# Installs what the tests need on a Debian machine (when missing) and runs every test.
# Tests start their own throwaway PostgreSQL clusters and PgBouncer; nothing is shared.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

packages=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || packages+=(postgresql)
command -v psql >/dev/null 2>&1 || packages+=(postgresql-client)
command -v pgbouncer >/dev/null 2>&1 || packages+=(pgbouncer)
command -v curl >/dev/null 2>&1 || packages+=(curl)
command -v cc >/dev/null 2>&1 || packages+=(build-essential)
command -v javac >/dev/null 2>&1 || packages+=(default-jdk-headless)
[ -f /usr/share/java/postgresql.jar ] || packages+=(libpostgresql-jdbc-java)
command -v python3 >/dev/null 2>&1 || packages+=(python3)
python3 -m venv --help >/dev/null 2>&1 || packages+=(python3-venv)
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)
if [ ${#packages[@]} -gt 0 ]; then
    echo "installing: ${packages[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${packages[@]}" >/dev/null
fi
# The Debian package may start its own cluster; the tests do not use it.
if ! command -v cargo >/dev/null 2>&1; then
    [ -x "$HOME/.cargo/bin/cargo" ] || curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c clippy,rustfmt
    export PATH="$HOME/.cargo/bin:$PATH"
fi

# Python drivers for the driver tests, in a virtualenv of their own.
VENV=target/test-venv
if ! "$VENV/bin/python3" -c "import psycopg, asyncpg, psycopg2, sqlalchemy, greenlet, alembic, django" >/dev/null 2>&1; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --upgrade pip
    "$VENV/bin/pip" install --quiet "psycopg[binary]" asyncpg psycopg2-binary sqlalchemy greenlet alembic "django>=5.2,<5.3"
fi
export PATH="$PWD/$VENV/bin:$PATH"
# node-postgres for the Node driver test.
[ -d target/test-node/node_modules/pg ] || npm install --prefix target/test-node --no-audit --no-fund --silent pg@8

cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings
# A hung test fails the run instead of stalling it.
timeout --foreground 45m cargo test --quiet || {
    rc=$?
    [ $rc = 124 ] && echo "tests did not finish within 45 minutes (a hang)" >&2
    exit $rc
}

# The cargo-fuzz targets, briefly: a fixed number of inputs from a fixed seed per target
# (long runs: `bash fuzz/run.sh SECONDS`). They need a nightly toolchain and cargo-fuzz,
# installed here through rustup when missing; without rustup they are skipped, and say so.
if command -v rustup >/dev/null 2>&1; then
    rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
    command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
    FUZZ_RUNS=20000 timeout --foreground 30m bash fuzz/run.sh
else
    echo "fuzz targets skipped: rustup is needed to install a nightly toolchain" >&2
fi
