#!/usr/bin/env bash
# Builds every JavaScript example app to a WebAssembly component and prints the absolute
# path of each .wasm file, one per line. Progress goes to stderr; stdout holds only the
# paths. An app whose component is newer than its sources, the SDK and the WIT is not
# rebuilt. The toolchain is installed into $DURABLE_JS_TOOLCHAIN (default
# target/js-toolchain) on first use.
set -euo pipefail

examples="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$(dirname "$examples")")"
sdk="$root/guest-sdk/js"
out="$root/target/js-examples"
apps=(hello_sequence fan_out_fan_in approval custom_status fail_always counter)
export DURABLE_JS_TOOLCHAIN="${DURABLE_JS_TOOLCHAIN:-$root/target/js-toolchain}"

"$sdk/install-toolchain.sh" "$DURABLE_JS_TOOLCHAIN"
mkdir -p "$out"
for app in "${apps[@]}"; do
    wasm="$out/$app.wasm"
    newer="$(find "$examples/$app" "$sdk/src" "$sdk/package-lock.json" "$root/wit" -type f -newer "$wasm" -print -quit 2>/dev/null || true)"
    if [[ ! -f "$wasm" || -n "$newer" ]]; then
        echo "building $app" >&2
        "$sdk/build-app.sh" "$examples/$app" "$wasm" "$root/wit"
    fi
    echo "$wasm"
done
