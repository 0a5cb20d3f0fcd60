#!/usr/bin/env bash
# Usage: install-toolchain.sh DIR
#
# Makes DIR a Python virtual environment holding componentize-py and this SDK
# (durable_functions), ready for `durable build` (which finds target/polyglot/python-venv of
# the repository by itself, as scripts/setup-polyglot.sh installs it; for another DIR put
# DIR/bin first on PATH, or set COMPONENTIZE_PY=DIR/bin/componentize-py). Idempotent: prints
# nothing when DIR is already up to date; reinstalls the SDK whenever its sources changed
# since the last run.
# Needs python3 (3.11 or later) and, for the first run only, access to PyPI.
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi

componentize_version=0.25.1
sdk="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$1"
python="${PYTHON:-python3}"

# What the SDK install depends on: its sources and the pinned componentize-py version.
fingerprint="$(
    cd "$sdk"
    {
        echo "componentize-py==$componentize_version"
        find pyproject.toml README.md durable_functions -name '*.py' -o -name '*.toml' -o -name '*.md' |
            LC_ALL=C sort | xargs sha256sum
    } | sha256sum | cut -d' ' -f1
)"
stamp="$venv/.durable-toolchain"
if [[ -x "$venv/bin/componentize-py" && -f "$stamp" && "$(cat "$stamp")" == "$fingerprint" ]]; then
    exit 0
fi

if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --quiet --disable-pip-version-check)
if ! "$venv/bin/componentize-py" --version 2>/dev/null | grep -qx "componentize-py $componentize_version"; then
    "${pip[@]}" install "componentize-py==$componentize_version"
fi
# The SDK is built with the venv's own setuptools (70.1 or later builds wheels by itself)
# rather than in an isolated build environment, so reinstalling it needs no network. Venvs
# of Python 3.12 and later come without setuptools.
"${pip[@]}" install "setuptools>=70.1"
# Built from a copy so that no build/ or egg-info directory lands in the source tree.
copy="$(mktemp -d)"
trap 'rm -rf "$copy"' EXIT
cp -r "$sdk/pyproject.toml" "$sdk/README.md" "$sdk/durable_functions" "$copy/"
find "$copy" -name __pycache__ -prune -exec rm -rf {} +
"${pip[@]}" install --no-build-isolation --no-deps --force-reinstall "$copy"
echo "$fingerprint" >"$stamp"
