#!/usr/bin/env bash
# Access-decision benchmark (benches/policy.rs): p50/p99 of PolicyEngine::decide against a
# plain-Rust baseline and the input-building cost, measured interleaved in one release run.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --bench policy "$@"
