#!/usr/bin/env bash
# Builds every example app to a WebAssembly component and prints the absolute path of each
# .wasm file, one per line. Progress goes to stderr; stdout holds only the paths.
set -euo pipefail

examples="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$examples")"
target=wasm32-wasip2
apps=(hello_sequence fan_out_fan_in monitor approval custom_status fail_always counter bank bench)

installed="$(rustup target list --installed)"
if ! grep -qx "$target" <<<"$installed"; then
    rustup target add "$target" >&2
fi

cargo build --release --target "$target" \
    --manifest-path "$examples/Cargo.toml" --target-dir "$root/target" >&2

for app in "${apps[@]}"; do
    wasm="$root/target/$target/release/$app.wasm"
    if [[ ! -f "$wasm" ]]; then
        echo "build.sh: $wasm was not built" >&2
        exit 1
    fi
    echo "$wasm"
done
