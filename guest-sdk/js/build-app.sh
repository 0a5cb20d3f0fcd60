#!/usr/bin/env bash
# Builds one JavaScript function app into a WebAssembly component.
#
#   guest-sdk/js/build-app.sh APP_DIR OUT.wasm WIT_DIR
#
# APP_DIR holds package.json, whose "main" (default index.js) is the app module; it imports
# "durable-functions", which resolves to this SDK. The toolchain is the one
# install-toolchain.sh put in $DURABLE_JS_TOOLCHAIN (default: target/js-toolchain of this
# repository, installed on first use).
#
# Steps (the Rust `durable build` runs the same ones):
#   1. esbuild bundles src/entry.js (the app's main module, then the component exports) into
#      one ES module, "durable-functions" aliased to src/index.js and "durable-app" to the
#      app's main module;
#   2. componentize-js turns the bundle into a component of world `app` of WIT_DIR.
set -euo pipefail

if [[ $# -ne 3 ]]; then
    echo "usage: $0 APP_DIR OUT.wasm WIT_DIR" >&2
    exit 2
fi
sdk="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
app="$(cd "$1" && pwd)"
out="$2"
wit="$(cd "$3" && pwd)"
toolchain="${DURABLE_JS_TOOLCHAIN:-$(dirname "$(dirname "$sdk")")/target/js-toolchain}"

if [[ ! -f "$app/package.json" ]]; then
    echo "$0: $app has no package.json" >&2
    exit 1
fi
main="$(node -e 'const p = require(process.argv[1]); process.stdout.write(typeof p.main === "string" && p.main !== "" ? p.main : "index.js")' "$app/package.json")"
if [[ ! -f "$app/$main" ]]; then
    echo "$0: the app's main module $app/$main does not exist" >&2
    exit 1
fi
"$sdk/install-toolchain.sh" "$toolchain"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$(dirname "$out")"

# --keep-names: error types are class names, which bundling must not rename.
"$toolchain/node_modules/.bin/esbuild" "$sdk/src/entry.js" \
    --bundle --format=esm --platform=browser --target=es2022 --keep-names \
    "--alias:durable-functions=$sdk/src/index.js" "--alias:durable-app=$app/$main" \
    --log-level=warning "--outfile=$work/app.js"
"$toolchain/node_modules/.bin/componentize-js" "$work/app.js" \
    --wit "$wit" --world-name app --out "$out" >&2
