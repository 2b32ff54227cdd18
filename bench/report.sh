#!/usr/bin/env bash
# The evidence report over a 100,000-entry audit trail (benches/report.rs): report::gather
# against audit::verify of the same trail in the same run, and the HTML rendering.
#   bench/report.sh            ENTRIES=20000 bench/report.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --bench report "$@"
