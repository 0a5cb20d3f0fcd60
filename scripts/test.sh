#!/usr/bin/env bash
# The one gate: formatting, lints, every test (unit, replay, store, end-to-end with the
# real binary and the example components). CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh

echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
cargo fmt --manifest-path examples/Cargo.toml --all -- --check
cargo fmt --manifest-path tests/guests/Cargo.toml --all -- --check

echo "== cargo clippy" >&2
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy --manifest-path examples/Cargo.toml --target wasm32-wasip2 --release -- -D warnings
cargo clippy --manifest-path tests/guests/Cargo.toml --target wasm32-wasip2 --release -- -D warnings

echo "== Python and JavaScript SDK tests (no wasm)" >&2
scripts/setup-polyglot.sh
python3 -m unittest discover -s guest-sdk/python/tests
node --test guest-sdk/js/test/

echo "== build the example components" >&2
examples/build.sh >/dev/null

echo "== PostgreSQL for the store and end-to-end tests" >&2
# The local server of scripts/postgres.sh, unless DURABLE_TEST_POSTGRES_URL names one
# already. It is stopped when this script exits, failed or not, unless it was running
# before (then it is someone's server and stays up). The PostgreSQL-restart test runs its own
# server under target/postgres-restart; the test stops it, and so does this, should the
# test have been killed.
postgres_was_running=yes
stop_postgres() {
    DURABLE_PG_DIR=target/postgres-restart scripts/postgres.sh stop || true
    if [[ "$postgres_was_running" != yes ]]; then
        scripts/postgres.sh stop || true
    fi
}
trap stop_postgres EXIT
if [[ -z "${DURABLE_TEST_POSTGRES_URL:-}" ]]; then
    if ! scripts/postgres.sh status >/dev/null 2>&1; then
        postgres_was_running=no
    fi
    DURABLE_TEST_POSTGRES_URL="$(scripts/postgres.sh start | tail -n 1)"
    export DURABLE_TEST_POSTGRES_URL
fi

echo "== cargo test" >&2
cargo test --workspace
