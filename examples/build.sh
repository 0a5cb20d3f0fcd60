#!/usr/bin/env bash
# Builds the example apps of one language to WebAssembly components and prints the absolute
# path of each .wasm file, one per line. Progress goes to stderr; stdout holds only the paths.
#
#   examples/build.sh           the Rust examples (examples/*/, one cargo workspace)
#   examples/build.sh python    the Python examples (examples/python/*/function_app.py)
#   examples/build.sh js        the JavaScript examples (examples/js/*/package.json)
#
# Python and JavaScript apps are built by `durable build` ($DURABLE, else the debug binary
# of this repository, built first), with the toolchains installed on first use under
# target/polyglot/ (componentize-py from PyPI, componentize-js and esbuild from npm). An app
# whose component is newer than its sources, its SDK and the WIT is not rebuilt.
set -euo pipefail

examples="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$examples")"
language="${1:-rust}"

case "$language" in
rust)
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
    exit 0
    ;;
python)
    sdk="$root/guest-sdk/python"
    venv="$root/target/polyglot/python-venv"
    "$sdk/install-toolchain.sh" "$venv" >&2
    export COMPONENTIZE_PY="$venv/bin/componentize-py"
    sources=("$sdk/durable_functions")
    ;;
js)
    sdk="$root/guest-sdk/js"
    export DURABLE_JS_TOOLCHAIN="$root/target/polyglot/js"
    export DURABLE_JS_SDK="$sdk"
    "$sdk/install-toolchain.sh" "$DURABLE_JS_TOOLCHAIN" >&2
    sources=("$sdk/src" "$sdk/package-lock.json")
    ;;
*)
    echo "usage: $0 [rust|python|js]" >&2
    exit 2
    ;;
esac

apps=(hello_sequence fan_out_fan_in approval custom_status fail_always counter)
out="$root/target/polyglot/$language"
if [[ -z "${DURABLE:-}" ]]; then
    cargo build --quiet -p durable --bin durable --manifest-path "$root/Cargo.toml" >&2
    DURABLE="$root/target/debug/durable"
fi
mkdir -p "$out"
for app in "${apps[@]}"; do
    wasm="$out/$app.wasm"
    changed="$(find "$examples/$language/$app" "${sources[@]}" "$root/wit" -type f -newer "$wasm" \
        -not -name '*.pyc' -print -quit 2>/dev/null || true)"
    if [[ ! -f "$wasm" || -n "$changed" ]]; then
        "$DURABLE" build "$examples/$language/$app" -o "$wasm" >/dev/null
    fi
    echo "$wasm"
done
