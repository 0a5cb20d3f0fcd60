#!/usr/bin/env bash
# Fuzzes the host with cargo fuzz (libFuzzer).
#
#   scripts/fuzz.sh [TARGET ...] [-- LIBFUZZER_ARGS ...]
#
# TARGET is http_request (management API requests answered by a real embedded task hub) or
# history_decode (stored bytes decoded as history events, inbox messages and records, then
# run through the replay rules); default: both. Each runs FUZZ_SECONDS seconds (default
# 120). Examples:
#
#   scripts/fuzz.sh                                   # both targets, 2 minutes each
#   FUZZ_SECONDS=600 scripts/fuzz.sh history_decode   # one target, 10 minutes
#   scripts/fuzz.sh http_request -- -runs=0           # run the seeds once and stop
#
# Environment:
#   FUZZ_SECONDS    time per target (libFuzzer -max_total_time); default 120
#   FUZZ_SANITIZER  address (default) or none (faster builds and runs, fewer bugs seen)
#   FUZZ_JOBS       parallel fuzzing processes per target (libFuzzer -fork); default 1
#   DURABLE_FUZZ_APPS  `:`-separated .wasm apps the http_request hub loads (default none)
#
# The targets' bodies are durable_http::fuzzing (host/http/src/fuzzing.rs); `cargo test` runs every
# seed of fuzz/corpus/ through them, so they build and pass without nightly. Here cargo fuzz
# needs nightly flags (-Z sanitizer, ...): on a stable toolchain this sets RUSTC_BOOTSTRAP=1.
#
# Seeds live in fuzz/corpus/TARGET/ (committed). New inputs libFuzzer finds go to
# fuzz/target/corpus/TARGET/ (ignored), crashes to fuzz/artifacts/TARGET/: reproduce one
# with `RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz TARGET fuzz/artifacts/TARGET/crash-...`,
# and once fixed, copy it into fuzz/corpus/TARGET/ so `cargo test` keeps it fixed.
# Builds go to fuzz/target/, never to the main target directory.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

targets=()
while [[ $# -gt 0 && $1 != "--" ]]; do
    targets+=("$1")
    shift
done
[[ ${1:-} == "--" ]] && shift
[[ ${#targets[@]} -eq 0 ]] && targets=(http_request history_decode)
for target in "${targets[@]}"; do
    case $target in
        http_request | history_decode) ;;
        *)
            echo "unknown fuzz target $target (expected http_request or history_decode)" >&2
            exit 2
            ;;
    esac
done

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

# cargo fuzz passes nightly-only flags; a stable rustc accepts them with RUSTC_BOOTSTRAP.
if ! rustc --version | grep -q nightly; then
    export RUSTC_BOOTSTRAP=1
fi
unset CARGO_TARGET_DIR

seconds=${FUZZ_SECONDS:-120}
sanitizer=${FUZZ_SANITIZER:-address}
jobs=${FUZZ_JOBS:-1}
fork=()
[[ $jobs -gt 1 ]] && fork=(-fork="$jobs")

for target in "${targets[@]}"; do
    echo "== cargo fuzz run $target (${seconds}s, sanitizer $sanitizer)" >&2
    scratch=fuzz/target/corpus/$target
    mkdir -p "$scratch" "fuzz/artifacts/$target"
    # The first corpus directory receives new inputs; the committed seeds stay as they are.
    cargo fuzz run --fuzz-dir fuzz --sanitizer "$sanitizer" "$target" "$scratch" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -dict="fuzz/$target.dict" -print_final_stats=1 "${fork[@]}" "$@"
done
