#!/usr/bin/env bash
# Installs the JavaScript build toolchain (componentize-js and esbuild, at the versions
# pinned by this directory's package-lock.json) into DIR/node_modules, like `npm ci`.
#
#   guest-sdk/js/install-toolchain.sh DIR
#
# Idempotent and quiet when DIR already holds this lock file's install. Needs node >= 20
# and npm; works offline from the npm cache once installed there. Install scripts are not
# run: none of the packages needs one (esbuild's binary comes from its platform package).
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
sdk="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="$1"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
stamp="$dir/.durable-js-toolchain"

lock_sum="$(sha256sum "$sdk/package-lock.json" | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$lock_sum" \
    && -x "$dir/node_modules/.bin/componentize-js" && -x "$dir/node_modules/.bin/esbuild" ]]; then
    exit 0
fi

echo "installing the JavaScript toolchain into $dir" >&2
cp "$sdk/package.json" "$sdk/package-lock.json" "$dir/"
rm -f "$stamp"
(cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
echo "$lock_sum" >"$stamp"
