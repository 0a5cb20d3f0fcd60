#!/usr/bin/env bash
# Builds the example apps and the host, then serves the examples on 127.0.0.1:7071 with a
# local redb store in .durable/. Extra arguments go to `durable serve`. DURABLE_EXAMPLES=python
# (or js) serves the Python (or JavaScript) examples instead of the Rust ones.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh
cargo build --release -p durable >&2
examples="${DURABLE_EXAMPLES:-rust}"
if [[ "$examples" != rust ]]; then
    scripts/setup-polyglot.sh
fi
mapfile -t apps < <(DURABLE=target/release/durable examples/build.sh "$examples")
app_args=()
for app in "${apps[@]}"; do
    app_args+=(--app "$app")
done
exec target/release/durable serve --listen 127.0.0.1:7071 --store .durable/store.redb "${app_args[@]}" "$@"
