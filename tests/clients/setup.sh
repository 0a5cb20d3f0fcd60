#!/usr/bin/env bash
# Installs the official Durable Functions client packages that tests/clients/*_client.* drive
# against our host, at the exact versions below:
#   target/clients/venv  Python venv with azure-functions-durable (+ azure-functions)
#   target/clients/node  npm project with durable-functions (+ @azure/functions)
# Idempotent: does nothing when the pinned versions are already installed. Quiet on stdout;
# progress and errors go to stderr. Needs python3 (3.10+, with venv) and node 20+ with npm.
set -euo pipefail

# The versions verified against our host. Bump them deliberately, then rerun the clients.
PY_DURABLE=1.7.0        # PyPI azure-functions-durable
PY_FUNCTIONS=1.26.0     # PyPI azure-functions (a dependency; pinned so runs are reproducible)
NPM_DURABLE=3.5.0       # npm durable-functions (the v3 programming model)
NPM_FUNCTIONS=4.16.5    # npm @azure/functions (peer of durable-functions v3)

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dir="$root/target/clients"
venv="$dir/venv"
node_dir="$dir/node"

fail() {
    echo "tests/clients/setup.sh: $*" >&2
    exit 1
}

command -v python3 >/dev/null || fail "python3 is not installed"
command -v node >/dev/null || fail "node is not installed"
command -v npm >/dev/null || fail "npm is not installed"

# --- Python -------------------------------------------------------------------------------
py_stamp="$venv/.installed"
py_want="azure-functions-durable==$PY_DURABLE azure-functions==$PY_FUNCTIONS"
if [[ ! -x "$venv/bin/python" || "$(cat "$py_stamp" 2>/dev/null)" != "$py_want" ]]; then
    echo "setup: creating $venv with $py_want" >&2
    rm -rf "$venv"
    mkdir -p "$dir"
    python3 -m venv "$venv" >&2 || fail "python3 -m venv $venv failed (is the venv module installed?)"
    # shellcheck disable=SC2086
    if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check $py_want >&2; then
        rm -rf "$venv"
        fail "pip install $py_want failed"
    fi
    "$venv/bin/python" -c 'import azure.durable_functions, azure.functions' >&2 \
        || fail "the installed Python packages do not import"
    echo "$py_want" >"$py_stamp"
fi

# --- Node ---------------------------------------------------------------------------------
node_stamp="$node_dir/.installed"
node_want="durable-functions@$NPM_DURABLE @azure/functions@$NPM_FUNCTIONS"
if [[ ! -d "$node_dir/node_modules/durable-functions" || "$(cat "$node_stamp" 2>/dev/null)" != "$node_want" ]]; then
    echo "setup: installing $node_want into $node_dir" >&2
    rm -rf "$node_dir"
    mkdir -p "$node_dir"
    cat >"$node_dir/package.json" <<EOF
{
  "name": "durable-official-clients",
  "private": true,
  "description": "The official Durable Functions JavaScript client, driven against our host by tests/clients/node_client.mjs",
  "dependencies": {
    "durable-functions": "$NPM_DURABLE",
    "@azure/functions": "$NPM_FUNCTIONS"
  }
}
EOF
    if ! (cd "$node_dir" && npm install --no-audit --no-fund --loglevel=error >&2); then
        rm -rf "$node_dir/node_modules"
        fail "npm install $node_want failed"
    fi
    (cd "$node_dir" && node -e 'require("durable-functions"); require("@azure/functions")' >&2) \
        || fail "the installed npm packages do not load"
    echo "$node_want" >"$node_stamp"
fi
