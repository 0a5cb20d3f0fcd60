#!/usr/bin/env bash
# Usage: build-app.sh APP_DIR OUT.wasm WIT_DIR
#
# Builds the Python function app in APP_DIR (a directory holding function_app.py that
# defines `app = durable_functions.DFApp()`) into the WebAssembly component OUT.wasm for
# the world `app` of the WIT package in WIT_DIR.
#
# Runs componentize-py from $COMPONENTIZE_PY, or the first one on PATH: use the one in the
# virtual environment VENV made by install-toolchain.sh, which also holds the SDK. The
# command it runs is the whole build:
#
#   VIRTUAL_ENV=VENV VENV/bin/componentize-py -d WIT_DIR -w app \
#       componentize durable_functions.component -p APP_DIR -o OUT.wasm
#
# (componentize-py finds the SDK through VIRTUAL_ENV.)
set -euo pipefail

if [[ $# -ne 3 ]]; then
    echo "usage: $0 APP_DIR OUT.wasm WIT_DIR" >&2
    exit 2
fi
app_dir="$1"
out="$2"
wit_dir="$3"
componentize="${COMPONENTIZE_PY:-$(command -v componentize-py || true)}"
if [[ -z "$componentize" ]]; then
    echo "build-app.sh: no componentize-py: run install-toolchain.sh DIR, then put DIR/bin on PATH" >&2
    exit 1
fi
venv="$(cd "$(dirname "$componentize")/.." && pwd)"
if [[ -f "$venv/pyvenv.cfg" ]]; then
    export VIRTUAL_ENV="$venv"
fi

if [[ ! -f "$app_dir/function_app.py" ]]; then
    echo "build-app.sh: $app_dir has no function_app.py" >&2
    exit 1
fi
mkdir -p "$(dirname "$out")"
exec "$componentize" -d "$wit_dir" -w app componentize durable_functions.component \
    -p "$app_dir" -o "$out"
