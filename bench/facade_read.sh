#!/bin/sh
# Facade read overhead against an unfiltered read of the same data (target ≤ 10 %).
# Release build; baseline and facade are timed interleaved in the same run (see
# bench/facade_read.rs). Usage: bench/facade_read.sh [iterations]
set -eu
cd "$(dirname "$0")/.."
cargo build --release --quiet --example facade_read
"${CARGO_TARGET_DIR:-target}/release/examples/facade_read" "${1:-3000}"
