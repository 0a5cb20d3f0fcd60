#!/usr/bin/env bash
# Installs the Python and JavaScript guest toolchains under target/polyglot/ (what
# `durable build` looks for when it runs from this repository):
#   target/polyglot/python-venv   a virtualenv with componentize-py and the durable_functions SDK
#   target/polyglot/js            node_modules with componentize-js and esbuild
# Needs python3 (3.11+) and Node.js 20+ with npm; the packages come from PyPI and npm.
# Idempotent and quiet when everything is there.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

"$root/guest-sdk/python/install-toolchain.sh" "$root/target/polyglot/python-venv" >&2
"$root/guest-sdk/js/install-toolchain.sh" "$root/target/polyglot/js" >&2
