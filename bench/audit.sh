#!/usr/bin/env bash
# Audit-trail overhead (benches/audit.rs): what the audit entry adds to a handover and to a
# read, against the request time, with the baselines measured interleaved in one release run;
# plus concurrent-writer throughput and verify speed.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --bench audit "$@"
