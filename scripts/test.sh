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

echo "== cargo test" >&2
cargo test --workspace
