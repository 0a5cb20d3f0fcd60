#!/usr/bin/env bash
# Installs what a fresh machine with a Rust toolchain lacks: the wasm32-wasip2 target and
# the rustfmt and clippy components. Idempotent and quiet when everything is there.
set -euo pipefail

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    echo "setup: rustup target add wasm32-wasip2" >&2
    rustup target add wasm32-wasip2 >&2
fi
for component in rustfmt clippy; do
    if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
        echo "setup: rustup component add $component" >&2
        rustup component add "$component" >&2
    fi
done
